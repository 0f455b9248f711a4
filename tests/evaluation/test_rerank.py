"""k-reciprocal re-ranking against a dense port of the published (classic numpy) algorithm."""

import numpy as np
import pytest
import torch

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import pairwise_distances
from reid_platform.evaluation.rerank import k_reciprocal_rerank

METRICS = ["cosine", "euclidean", "euclidean_squared"]


def _reciprocal(initial_rank: np.ndarray, i: int, width: int) -> np.ndarray:
    forward = initial_rank[i, :width]
    backward = initial_rank[forward, :width]
    return forward[np.where(backward == i)[0]]


def classic_re_ranking(
    q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int, k2: int, lambda_value: float
) -> np.ndarray:
    """Zhong et al.'s re_ranking as published (torchreid / FastReID rerank.py), loops and all."""
    original = np.concatenate(
        [np.concatenate([q_q, q_g], axis=1), np.concatenate([q_g.T, g_g], axis=1)], axis=0
    )
    original = np.power(original, 2).astype(np.float32)
    original = np.transpose(1.0 * original / np.max(original, axis=0))
    v = np.zeros_like(original).astype(np.float32)
    initial_rank = np.argsort(original).astype(np.int32)
    query_num, all_num = q_g.shape[0], q_g.shape[0] + q_g.shape[1]
    half = int(np.around(k1 / 2.0)) + 1
    for i in range(all_num):
        k_reciprocal = _reciprocal(initial_rank, i, k1 + 1)
        expansion = k_reciprocal
        for candidate in k_reciprocal:
            candidate_reciprocal = _reciprocal(initial_rank, candidate, half)
            shared = len(np.intersect1d(candidate_reciprocal, k_reciprocal))
            if shared > 2.0 / 3 * len(candidate_reciprocal):
                expansion = np.append(expansion, candidate_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        v[i, expansion] = 1.0 * weight / np.sum(weight)
    original = original[:query_num]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float32)
        for i in range(all_num):
            v_qe[i, :] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
    inverted = [np.where(v[:, i] != 0)[0] for i in range(all_num)]
    jaccard = np.zeros_like(original, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, all_num], dtype=np.float32)
        nonzero = np.where(v[i, :] != 0)[0]
        for column in nonzero:
            images = inverted[column]
            temp_min[0, images] += np.minimum(v[i, column], v[images, column])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + original * lambda_value
    return final[:query_num, query_num:]


def _classic(q: np.ndarray, g: np.ndarray, metric: str, k1: int, k2: int, lam: float) -> np.ndarray:
    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return pairwise_distances(a, b, metric)  # type: ignore[arg-type]

    return classic_re_ranking(dist(q, g), dist(q, q), dist(g, g), k1, k2, lam)


def _mean_ap(distances: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray) -> float:
    aps = []
    for row, pid in zip(distances, q_pids, strict=True):
        matches = g_pids[np.argsort(row, kind="stable")] == pid
        if matches.any():
            hits = np.cumsum(matches)
            aps.append(float((hits / np.arange(1, len(hits) + 1))[matches].mean()))
    return float(np.mean(aps))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("k1", "k2", "lam"), [(20, 6, 0.3), (5, 1, 0.5), (7, 3, 0.0), (3, 2, 1.0)])
def test_matches_classic_algorithm_on_random_features(
    metric: str, k1: int, k2: int, lam: float
) -> None:
    rng = np.random.default_rng(k1 * 10 + k2)
    q = rng.standard_normal((30, 16)).astype(np.float32)
    g = rng.standard_normal((80, 16)).astype(np.float32)
    expected = _classic(q, g, metric, k1, k2, lam)
    got = k_reciprocal_rerank(q, g, metric=metric, k1=k1, k2=k2, lambda_value=lam)  # type: ignore[arg-type]
    assert got.dtype == np.float32 and got.shape == (30, 80)
    np.testing.assert_allclose(got, expected, atol=2e-6)
    if lam > 0:  # with λ = 0 many Jaccard distances tie, and rounding may order them either way
        pids_q, pids_g = rng.integers(0, 8, 30), rng.integers(0, 8, 80)
        assert _mean_ap(got, pids_q, pids_g) == pytest.approx(_mean_ap(expected, pids_q, pids_g))


def _clustered_low_rank() -> tuple[np.ndarray, np.ndarray]:
    """(440, 512) float32 features of 60 ids in a 32-d latent space, and their (440,) ids."""
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((60, 32))
    ids = rng.integers(0, 60, 440)
    latent = centres[ids] + 0.6 * rng.standard_normal((440, 32))
    features = latent @ rng.standard_normal((32, 512)) + 0.05 * rng.standard_normal((440, 512))
    return features.astype(np.float32), ids


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "euclidean_squared"])
def test_matches_classic_algorithm_on_the_low_rank_search_path(metric: str, device: str) -> None:
    # 400 gallery rows of 512-d features with a low-rank structure: on the CPU the gallery
    # neighbour search takes the certified low-rank path rather than brute force.
    features, ids = _clustered_low_rank()
    q, g = features[:40], features[40:]
    expected = _classic(q, g, metric, 20, 6, 0.3)
    got = k_reciprocal_rerank(q, g, metric=metric, device=device)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert _mean_ap(got, ids[:40], ids[40:]) == pytest.approx(
        _mean_ap(expected, ids[:40], ids[40:])
    )


def test_tiny_inputs_with_k1_beyond_the_number_of_rows() -> None:
    rng = np.random.default_rng(12)
    q = rng.standard_normal((2, 3)).astype(np.float32)
    g = rng.standard_normal((4, 3)).astype(np.float32)
    expected = _classic(q, g, "euclidean", 20, 6, 0.3)
    np.testing.assert_allclose(k_reciprocal_rerank(q, g, metric="euclidean"), expected, atol=2e-6)


def test_bad_arguments_are_clear_errors() -> None:
    q = np.ones((2, 3), np.float32)
    with pytest.raises(EvaluationError, match="k1"):
        k_reciprocal_rerank(q, q, metric="cosine", k1=0)
    with pytest.raises(EvaluationError, match="lambda"):
        k_reciprocal_rerank(q, q, metric="cosine", lambda_value=1.5)
    with pytest.raises(EvaluationError, match="one d"):
        k_reciprocal_rerank(q, np.ones((2, 4), np.float32), metric="cosine")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    q = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(EvaluationError, match="CUDA"):
        k_reciprocal_rerank(q, q, metric="cosine", device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_path_matches_classic() -> None:
    rng = np.random.default_rng(13)
    q = rng.standard_normal((20, 16)).astype(np.float32)
    g = rng.standard_normal((60, 16)).astype(np.float32)
    got = k_reciprocal_rerank(q, g, metric="euclidean", device="cuda")
    np.testing.assert_allclose(got, _classic(q, g, "euclidean", 20, 6, 0.3), atol=2e-6)
