"""Gallery index search and large-gallery metrics against brute force and hand-worked cases."""

from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import pairwise_distances
from reid_platform.evaluation.ranking import evaluate_ranking
from reid_platform.evaluation.retrieval import (
    FlatSpec,
    GalleryIndex,
    IvfFlatSpec,
    IvfPqSpec,
)
from reid_platform.evaluation.retrieval_metrics import evaluate_streaming, evaluate_top_k

METRICS = ["cosine", "euclidean", "euclidean_squared"]


@pytest.fixture(autouse=True)
def _one_faiss_thread() -> Iterator[None]:
    """faiss's OpenMP k-means on tiny cases is 10x slower on 2 threads when the cores are busy."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def _dense(query: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """Textbook float64 distances, written independently of the library."""
    q, g = query.astype(np.float64), gallery.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
        return 1.0 - q @ g.T
    squared = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    return squared if metric == "euclidean_squared" else np.sqrt(squared)


def _clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) * 3
    points = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim))
    return points.astype(np.float32)


def _reid_case(
    num_query: int, num_gallery: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features that follow their ids, with junk, distractors and queries without a match."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, 18, num_query)  # ids 15.. have no gallery image
    g_pids = rng.integers(0, 15, num_gallery)
    q_cams, g_cams = rng.integers(0, 3, num_query), rng.integers(0, 3, num_gallery)
    centres = rng.standard_normal((18, 16))
    q_feats = centres[q_pids] + rng.standard_normal((num_query, 16)) * 0.9
    g_feats = centres[g_pids] + rng.standard_normal((num_gallery, 16)) * 0.9
    return (
        q_feats.astype(np.float32),
        g_feats.astype(np.float32),
        q_pids,
        g_pids,
        q_cams,
        g_cams,
    )


@pytest.mark.parametrize("metric", METRICS)
def test_flat_search_matches_brute_force_argsort(metric: str) -> None:
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((500, 24)).astype(np.float32)
    queries = rng.standard_normal((30, 24)).astype(np.float32)
    index = GalleryIndex.build(gallery, metric=metric, spec=FlatSpec())  # type: ignore[arg-type]
    distances, indices = index.search(queries, 10)
    expected = _dense(queries, gallery, metric)
    expected_ids = np.argsort(expected, axis=1, kind="stable")[:, :10]
    assert distances.dtype == np.float32 and indices.dtype == np.int64
    assert distances.shape == indices.shape == (30, 10)
    np.testing.assert_array_equal(indices, expected_ids)
    expected_dists = np.take_along_axis(expected, expected_ids, axis=1)
    np.testing.assert_allclose(distances, expected_dists, rtol=1e-4, atol=1e-4)


def test_distance_units_and_tie_order_on_a_hand_case() -> None:
    gallery = np.array([[3, 4], [0, 0], [-3, -4], [4, -3]], dtype=np.float32)
    query = np.array([[3, 4]], dtype=np.float32)
    # cosine: identical 0, zero vector 1 (its normalised form stays zero), opposite 2,
    # orthogonal 1; the tie between gallery 1 and 3 is ordered by gallery index.
    cases = {
        "cosine": ([0, 1, 3, 2], [0.0, 1.0, 1.0, 2.0]),
        "euclidean": ([0, 1, 3, 2], [0.0, 5.0, np.sqrt(50.0), 10.0]),
        "euclidean_squared": ([0, 1, 3, 2], [0.0, 25.0, 50.0, 100.0]),
    }
    for metric, (ids, dists) in cases.items():
        index = GalleryIndex.build(gallery, metric=metric)  # type: ignore[arg-type]
        distances, indices = index.search(query, 10)  # k beyond the gallery is clamped to it
        np.testing.assert_array_equal(indices[0], ids)
        np.testing.assert_allclose(distances[0], dists, atol=1e-5)


@pytest.mark.parametrize("metric", METRICS)
def test_ivf_flat_scanning_every_list_equals_flat(metric: str) -> None:
    gallery = _clustered(3000, 16, 20, seed=1)
    queries = _clustered(40, 16, 20, seed=2)
    flat = GalleryIndex.build(gallery, metric=metric)  # type: ignore[arg-type]
    spec = IvfFlatSpec(nlist=32, nprobe=32)
    ivf = GalleryIndex.build(gallery, metric=metric, spec=spec)  # type: ignore[arg-type]
    flat_d, flat_i = flat.search(queries, 15)
    ivf_d, ivf_i = ivf.search(queries, 15)
    np.testing.assert_array_equal(ivf_i, flat_i)
    np.testing.assert_allclose(ivf_d, flat_d, rtol=1e-5, atol=1e-5)


def test_ivf_pq_recall_on_clustered_data() -> None:
    gallery = _clustered(20000, 32, 100, seed=3)
    queries = _clustered(200, 32, 100, seed=4)
    _, exact = GalleryIndex.build(gallery, metric="euclidean").search(queries, 10)
    spec = IvfPqSpec(nlist=64, nprobe=8, m=16, bits=6, train_points_per_list=40)
    index = GalleryIndex.build(gallery, metric="euclidean", spec=spec)
    distances, approx = index.search(queries, 10)
    recall = np.mean([len(np.intersect1d(a, e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.5, recall
    # PQ distances are approximations of the true ones, in the same units.
    true = np.sqrt(((queries[:, None, :] - gallery[approx]) ** 2).sum(-1))
    assert np.median(np.abs(distances - true) / true) < 0.15


def test_chunked_add_save_and_load(tmp_path: Path) -> None:
    gallery = _clustered(2000, 16, 10, seed=5)
    queries = _clustered(20, 16, 10, seed=6)
    spec = IvfFlatSpec(nlist=8, nprobe=3)
    whole = GalleryIndex.build(gallery, metric="cosine", spec=spec)
    streamed = GalleryIndex(dim=16, metric="cosine", spec=spec)
    streamed.train(gallery)
    streamed.add(gallery[:700], chunk_rows=64)
    streamed.add(gallery[700:], chunk_rows=1000)
    assert streamed.ntotal == 2000
    np.testing.assert_array_equal(streamed.search(queries, 5)[1], whole.search(queries, 5)[1])
    path = tmp_path / "gallery.faiss"
    whole.save(path)
    loaded = GalleryIndex.load(path, metric="cosine")
    assert loaded.spec == IvfFlatSpec(nlist=8, nprobe=3) and loaded.ntotal == 2000
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], whole.search(queries, 5)[1])
    with pytest.raises(EvaluationError, match="euclidean"):
        GalleryIndex.load(path, metric="euclidean")
    loaded.set_nprobe(8)  # every cell: exact again
    exact = GalleryIndex.build(gallery, metric="cosine").search(queries, 5)[1]
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], exact)
    assert loaded.spec == IvfFlatSpec(nlist=8, nprobe=8)
    with pytest.raises(EvaluationError, match="nprobe"):
        loaded.set_nprobe(9)
    (tmp_path / "junk.faiss").write_text("not an index")
    with pytest.raises(EvaluationError, match="not a faiss index"):
        GalleryIndex.load(tmp_path / "junk.faiss", metric="cosine")


def test_index_errors_name_the_culprit() -> None:
    gallery = np.random.default_rng(0).standard_normal((50, 12)).astype(np.float32)
    with pytest.raises(EvaluationError, match="too few"):
        GalleryIndex.build(gallery, metric="euclidean", spec=IvfFlatSpec(nlist=100, nprobe=4))
    with pytest.raises(EvaluationError, match="m=5 must divide"):
        GalleryIndex(dim=12, metric="euclidean", spec=IvfPqSpec(nlist=4, nprobe=1, m=5))
    with pytest.raises(EvaluationError, match="nprobe"):
        GalleryIndex(dim=12, metric="euclidean", spec=IvfFlatSpec(nlist=4, nprobe=8))
    with pytest.raises(EvaluationError, match="unknown distance"):
        GalleryIndex(dim=12, metric="manhattan")  # type: ignore[arg-type]
    with pytest.raises(EvaluationError, match="trained first"):
        GalleryIndex(dim=12, metric="cosine", spec=IvfFlatSpec(nlist=4, nprobe=1)).add(gallery)
    index = GalleryIndex.build(gallery, metric="cosine")
    with pytest.raises(EvaluationError, match="8-d but the index is 12-d"):
        index.search(gallery[:, :8], 3)
    with pytest.raises(EvaluationError, match="k must be"):
        index.search(gallery, 0)
    with pytest.raises(EvaluationError, match="empty"):
        GalleryIndex(dim=12, metric="cosine").search(gallery, 3)


@pytest.mark.parametrize("metric", METRICS)
def test_streaming_equals_dense_evaluation_for_any_chunk_size(metric: str) -> None:
    q_feats, g_feats, q_pids, g_pids, q_cams, g_cams = _reid_case(37, 120, seed=7)
    distmat = pairwise_distances(q_feats, g_feats, metric)  # type: ignore[arg-type]
    expected = evaluate_ranking(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    assert expected.num_skipped_queries > 0  # the case has queries without a match
    for chunk_rows in (1, 5, 37, 1000, None):
        got = evaluate_streaming(
            q_feats,
            g_feats,
            q_pids,
            g_pids,
            q_cams,
            g_cams,
            metric=metric,  # type: ignore[arg-type]
            max_rank=20,
            chunk_rows=chunk_rows,
        )
        np.testing.assert_array_equal(got.valid_queries, expected.valid_queries)
        np.testing.assert_allclose(got.cmc, expected.cmc)
        np.testing.assert_allclose(got.average_precision, expected.average_precision)
        np.testing.assert_allclose(got.inverse_negative_penalty, expected.inverse_negative_penalty)
        assert got.num_queries == 37


def test_top_k_hand_worked_case() -> None:
    g_pids = np.array([1, 3, 1, 2, 1])
    g_cams = np.array([0, 1, 1, 1, 1])
    q_pids = np.array([1, 2, 9, 3])
    q_cams = np.array([0, 0, 0, 0])
    inf = np.inf
    distances = np.array(
        [[0.1, 0.5, 0.5], [0.2, 0.3, 0.4], [0.1, 0.2, 0.3], [0.4, inf, inf]], dtype=np.float32
    )
    indices = np.array([[0, 2, 1], [3, 0, 1], [0, 1, 2], [4, -1, -1]])
    result = evaluate_top_k(distances, indices, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    # q0: tie re-ordered to [0, 1, 2]; gallery 0 is junk (same id and camera), kept list
    #     [1, 2] with r = [0, 1]; matches in the gallery: 2 and 4, so AP = (1/2)/2, INP = 0
    #     (gallery 4 was not retrieved), first hit at rank 2.
    # q1: gallery 3 is its only match, retrieved first: AP = INP = 1.
    # q2: identity 9 is not in the gallery: skipped.
    # q3: its match (gallery 1) was not retrieved (-1 = no hit): AP = INP = 0, no hit.
    np.testing.assert_array_equal(result.valid_queries, [0, 1, 3])
    np.testing.assert_allclose(result.average_precision, [0.25, 1.0, 0.0])
    np.testing.assert_allclose(result.inverse_negative_penalty, [0.0, 1.0, 0.0])
    np.testing.assert_allclose(result.cmc, [1 / 3, 2 / 3, 2 / 3])  # depth min(50, k=3)
    assert result.num_queries == 4 and result.num_skipped_queries == 1


@pytest.mark.parametrize("metric", METRICS)
def test_top_k_equals_full_metrics_when_every_match_is_retrieved(metric: str) -> None:
    q_feats, g_feats, q_pids, g_pids, q_cams, g_cams = _reid_case(40, 90, seed=8)
    distmat = pairwise_distances(q_feats, g_feats, metric)  # type: ignore[arg-type]
    full = evaluate_ranking(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=30)
    order = np.argsort(distmat, axis=1, kind="stable")
    dense = np.take_along_axis(distmat, order, axis=1)
    index = GalleryIndex.build(g_feats, metric=metric)  # type: ignore[arg-type]
    for distances, indices in ((dense, order), index.search(q_feats, 200)):
        top = evaluate_top_k(distances, indices, q_pids, g_pids, q_cams, g_cams, max_rank=30)
        np.testing.assert_array_equal(top.valid_queries, full.valid_queries)
        np.testing.assert_allclose(top.cmc, full.cmc)
        np.testing.assert_allclose(top.average_precision, full.average_precision)
        np.testing.assert_allclose(top.inverse_negative_penalty, full.inverse_negative_penalty)


def test_top_k_is_a_lower_bound_and_exact_where_all_matches_were_retrieved() -> None:
    q_feats, g_feats, q_pids, g_pids, q_cams, g_cams = _reid_case(60, 150, seed=9)
    distmat = pairwise_distances(q_feats, g_feats, "euclidean")
    full = evaluate_ranking(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    distances, indices = GalleryIndex.build(g_feats, metric="euclidean").search(q_feats, 20)
    top = evaluate_top_k(distances, indices, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    np.testing.assert_array_equal(top.valid_queries, full.valid_queries)
    assert np.all(top.average_precision <= full.average_precision + 1e-12)
    assert np.all(top.inverse_negative_penalty <= full.inverse_negative_penalty + 1e-12)
    assert np.all(top.cmc <= full.cmc + 1e-12)
    # Where every match (same id, other camera) is among the 20 retrieved, AP and INP are exact.
    valid = full.valid_queries
    matches = (g_pids[None, :] == q_pids[valid, None]) & (g_cams[None, :] != q_cams[valid, None])
    retrieved = np.zeros_like(matches)
    np.put_along_axis(retrieved, indices[valid], True, axis=1)
    complete = ~(matches & ~retrieved).any(axis=1)
    assert 0 < complete.sum() < len(valid)
    np.testing.assert_allclose(
        top.average_precision[complete], full.average_precision[complete], rtol=1e-12
    )
    np.testing.assert_allclose(
        top.inverse_negative_penalty[complete], full.inverse_negative_penalty[complete]
    )


def test_metric_errors_name_the_culprit() -> None:
    g_pids, g_cams = np.array([1, 2, 3]), np.array([0, 1, 1])
    distances, indices = np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int64)
    q_pids, q_cams = np.array([1, 2]), np.array([1, 0])
    with pytest.raises(EvaluationError, match="same"):
        evaluate_top_k(distances, indices[:, :1], q_pids, g_pids, q_cams, g_cams)
    with pytest.raises(EvaluationError, match="search row"):
        evaluate_top_k(distances, indices, q_pids[:1], g_pids, q_cams[:1] * 0, g_cams)
    with pytest.raises(EvaluationError, match="gallery ids"):
        evaluate_top_k(distances, indices + 3, q_pids, g_pids, q_cams, g_cams)
    with pytest.raises(EvaluationError, match="no query has a match"):
        evaluate_top_k(distances, indices, np.array([7, 8]), g_pids, q_cams, g_cams)
    feats = np.zeros((3, 4), np.float32)
    with pytest.raises(EvaluationError, match="query ids"):
        evaluate_streaming(
            feats, feats, q_pids, g_pids, q_cams, g_cams, metric="euclidean", max_rank=2
        )
