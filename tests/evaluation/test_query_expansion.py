"""Average query expansion against a dense loop port of the reference (notes §3.5)."""

import numpy as np
import pytest
import torch

from reid_platform.errors import EvaluationError
from reid_platform.evaluation import knn, knn_strip_maxima, knn_symmetric_search, query_expansion
from reid_platform.evaluation.query_expansion import average_query_expansion


def _dense_aqe(
    q: np.ndarray, g: np.ndarray, times: int, k: int, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """FastReID's aqe: full N × N cosine similarity, per-row top-k (itself included)."""
    features = np.concatenate([q, g]).astype(np.float64)
    normalised = features / np.linalg.norm(features, axis=1, keepdims=True)
    for _ in range(times):
        similarities = normalised @ normalised.T
        rows = []
        for row in similarities:
            top = np.argsort(-row, kind="stable")[:k]
            weights = np.power(row[top], alpha)[:, None]
            rows.append(np.mean(features[top] * weights, axis=0))
        features = np.stack(rows)
        normalised = features / np.linalg.norm(features, axis=1, keepdims=True)
    return features[: len(q)], features[len(q) :]


@pytest.mark.parametrize(
    ("times", "k", "alpha"), [(1, 10, 3.0), (2, 5, 3.0), (1, 3, 1.5), (1, 1, 3.0)]
)
def test_matches_dense_loop(times: int, k: int, alpha: float) -> None:
    rng = np.random.default_rng(times * 100 + k)
    q = (rng.standard_normal((25, 12)) + 1.0).astype(np.float32)
    g = (rng.standard_normal((70, 12)) + 1.0).astype(np.float32)
    expected_q, expected_g = _dense_aqe(q, g, times, k, alpha)
    got_q, got_g = average_query_expansion(q, g, times=times, k=k, alpha=alpha)
    assert got_q.shape == q.shape and got_g.shape == g.shape and got_q.dtype == np.float32
    np.testing.assert_allclose(got_q, expected_q, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_g, expected_g, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("times", [1, 2])
def test_matches_dense_loop_on_the_low_rank_search_path(times: int, device: str) -> None:
    # On the CPU the neighbour search takes the low-rank path; on a GPU, brute force.
    rng = np.random.default_rng(7)
    features = rng.standard_normal((500, 16)) @ rng.standard_normal((16, 512)) + 2.0
    features = (features + 0.02 * rng.standard_normal((500, 512))).astype(np.float32)
    expected_q, expected_g = _dense_aqe(features[:50], features[50:], times, 10, 3.0)
    got_q, got_g = average_query_expansion(features[:50], features[50:], times=times, device=device)
    assert got_q.dtype == np.float32 and isinstance(got_q, np.ndarray)
    np.testing.assert_allclose(got_q, expected_q, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_g, expected_g, rtol=1e-4, atol=1e-4)


def test_matches_dense_loop_on_the_symmetric_search_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knn_strip_maxima, "STRIP_ROWS", 48)  # several strips and chunks
    monkeypatch.setattr(knn_strip_maxima, "CHUNK_COLUMNS", 96)
    answered = []
    search = knn_symmetric_search.symmetric_search

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        answered.append(result := search(*args, **kwargs))
        return result

    monkeypatch.setattr(knn, "symmetric_search", spy)
    rng = np.random.default_rng(8)
    features = rng.standard_normal((520, 24)) @ rng.standard_normal((24, 512)) + 2.0
    features = (features + 0.05 * rng.standard_normal((520, 512))).astype(np.float32)
    expected_q, expected_g = _dense_aqe(features[:60], features[60:], 2, 10, 3.0)
    got_q, got_g = average_query_expansion(features[:60], features[60:], times=2)
    assert len(answered) == 2 and all(result is not None for result in answered)
    np.testing.assert_allclose(got_q, expected_q, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_g, expected_g, rtol=1e-4, atol=1e-4)


def test_means_in_blocks_over_both_inputs_leave_the_inputs_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Blocks of 7 rows straddle the query/gallery boundary (at 25); float64 column-major
    # inputs are converted; the inputs are only read.
    monkeypatch.setattr(query_expansion, "MEANS_BLOCK_ROWS", 7)
    rng = np.random.default_rng(11)
    q = np.asfortranarray(rng.standard_normal((25, 12)) + 1.0)
    g = np.asfortranarray(rng.standard_normal((70, 12)) + 1.0)
    kept = q.copy(), g.copy()
    expected_q, expected_g = _dense_aqe(q, g, 2, 6, 3.0)
    got_q, got_g = average_query_expansion(q, g, times=2, k=6)
    np.testing.assert_allclose(got_q, expected_q, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_g, expected_g, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(q, kept[0])
    np.testing.assert_array_equal(g, kept[1])


def test_zero_rounds_return_the_features() -> None:
    q = np.ones((2, 3), np.float32)
    got_q, got_g = average_query_expansion(q, 2 * q, times=0)
    np.testing.assert_array_equal(got_q, q)
    np.testing.assert_array_equal(got_g, 2 * q)


def test_bad_arguments_are_clear_errors() -> None:
    q = np.ones((2, 3), np.float32)
    with pytest.raises(EvaluationError, match="k >= 1"):
        average_query_expansion(q, q, k=0)
    with pytest.raises(EvaluationError, match="one d"):
        average_query_expansion(q, np.ones((2, 4), np.float32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    q = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(EvaluationError, match="CUDA"):
        average_query_expansion(q, q, device="cuda")
