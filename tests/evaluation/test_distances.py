"""Chunked distances against direct per-pair formulas."""

import numpy as np
import pytest

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import (
    distance_chunks,
    l2_normalize,
    pairwise_distances,
)


def _pairs(query: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    out = np.zeros((len(query), len(gallery)))
    for i, q in enumerate(query.astype(np.float64)):
        for j, g in enumerate(gallery.astype(np.float64)):
            if metric == "cosine":
                out[i, j] = 1.0 - q @ g / (np.linalg.norm(q) * np.linalg.norm(g))
            else:
                squared = float(((q - g) ** 2).sum())
                out[i, j] = squared if metric == "euclidean_squared" else np.sqrt(squared)
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "euclidean_squared"])
def test_matches_per_pair_formula_across_chunk_sizes(metric: str) -> None:
    rng = np.random.default_rng(0)
    query = rng.standard_normal((13, 7)).astype(np.float32)
    gallery = rng.standard_normal((29, 7)).astype(np.float32) * 3
    expected = _pairs(query, gallery, metric)
    for chunk_rows in (1, 4, 13, 100):
        got = pairwise_distances(query, gallery, metric, chunk_rows=chunk_rows)  # type: ignore[arg-type]
        assert got.dtype == np.float32 and got.shape == (13, 29)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_hand_worked_values() -> None:
    query = np.array([[3.0, 4.0]], dtype=np.float32)
    gallery = np.array([[3.0, 4.0], [0.0, 0.0], [-3.0, -4.0], [4.0, -3.0]], dtype=np.float32)
    np.testing.assert_allclose(
        pairwise_distances(query, gallery, "euclidean"), [[0.0, 5.0, 10.0, np.sqrt(50)]], atol=1e-5
    )
    np.testing.assert_allclose(
        pairwise_distances(query, gallery, "euclidean_squared"), [[0, 25, 100, 50]], atol=1e-4
    )
    # The zero vector has no direction: its cosine similarity is 0, so its distance is 1.
    np.testing.assert_allclose(
        pairwise_distances(query, gallery, "cosine"), [[0.0, 1.0, 2.0, 1.0]], atol=1e-6
    )


def test_chunks_cover_every_row_once() -> None:
    query = np.ones((10, 3), np.float32)
    rows = [chunk for chunk, _ in distance_chunks(query, query, "cosine", chunk_rows=4)]
    assert [(r.start, r.stop) for r in rows] == [(0, 4), (4, 8), (8, 10)]


def test_l2_normalize_keeps_zero_rows() -> None:
    out = l2_normalize(np.array([[0.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_array_equal(out, [[0.0, 0.0], [0.0, 1.0]])


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(EvaluationError, match="unknown distance 'manhattan'"):
        pairwise_distances(np.ones((2, 3)), np.ones((2, 3)), "manhattan")  # type: ignore[arg-type]
    with pytest.raises(EvaluationError, match="3-d but gallery features are 4-d"):
        pairwise_distances(np.ones((2, 3)), np.ones((2, 4)), "cosine")
