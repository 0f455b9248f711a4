"""DSR against dense per-pair numpy formulas, partial-crop cases and the fusion's ranking rules."""

import math

import numpy as np
import pytest

from reid_platform.errors import EvaluationError
from reid_platform.evaluation import dsr as dsr_module
from reid_platform.evaluation.dsr import (
    DsrDistances,
    choose_dsr_weight,
    dsr_distances,
    fuse_dsr,
    top_k_candidates,
)


def _columns(spatial: np.ndarray) -> np.ndarray:
    """(C, h, w) → (C, h·w) float64 with unit columns (zero columns stay zero)."""
    matrix = spatial.reshape(spatial.shape[0], -1).astype(np.float64)
    norms = np.linalg.norm(matrix, axis=0)
    return matrix / np.where(norms > 0, norms, 1.0)


def _ridge_residuals(x: np.ndarray, g: np.ndarray, ridge: float) -> np.ndarray:
    """‖x_j − G w_j‖ with w_j = argmin ‖x_j − G w‖² + κ‖w‖²: an augmented least-squares problem."""
    stacked = np.vstack([g, math.sqrt(ridge) * np.eye(g.shape[1])])
    target = np.vstack([x, np.zeros((g.shape[1], x.shape[1]))])
    coefficients = np.linalg.lstsq(stacked, target, rcond=None)[0]
    return np.linalg.norm(x - g @ coefficients, axis=0)


def _naive_dsr(
    q_spatial: np.ndarray, g_spatial: np.ndarray, ridge: float, method: str, weighting: str
) -> np.ndarray:
    out = np.zeros((len(q_spatial), len(g_spatial)))
    for i, query in enumerate(q_spatial):
        x = _columns(query)
        raw = np.linalg.norm(query.reshape(query.shape[0], -1).astype(np.float64), axis=0)
        weights = raw if weighting == "norm" else (raw > 0).astype(np.float64)
        weights = weights / weights.sum()
        for j, gallery in enumerate(g_spatial):
            g = _columns(gallery)
            if method == "reconstruction":
                residuals = _ridge_residuals(x, g, ridge)
            else:
                residuals = np.array([1.0 - max(x[:, a] @ g[:, b] for b in range(g.shape[1]))
                                      for a in range(x.shape[1])])  # fmt: skip
            out[i, j] = float(weights @ residuals)
    return out


def _maps(rng: np.random.Generator, n: int, channels: int, h: int, w: int) -> np.ndarray:
    return rng.standard_normal((n, channels, h, w)).astype(np.float32)


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_top_k_candidates_are_a_stable_argsort_prefix(k: int) -> None:
    rng = np.random.default_rng(0)
    distmat = rng.integers(0, 4, size=(9, 12)).astype(np.float32)  # many ties
    expected = np.argsort(distmat, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_k_candidates(distmat, k), expected)


@pytest.mark.parametrize("method", ["reconstruction", "best_match"])
@pytest.mark.parametrize("weighting", ["uniform", "norm"])
def test_dsr_matches_dense_per_pair_formula(method: str, weighting: str) -> None:
    rng = np.random.default_rng(1)
    # gallery maps have more locations (12) than channels (8): the ridge keeps it solvable
    q_spatial, g_spatial = _maps(rng, 3, 8, 2, 2), _maps(rng, 5, 8, 4, 3)
    q_spatial[0, :, 1, 1] = 0.0  # an empty location: weight 0 either way
    g_spatial[2, :, 0, 0] = 0.0
    distmat = rng.random((3, 5)).astype(np.float32)
    result = dsr_distances(
        q_spatial, g_spatial, distmat, top_k=5, ridge=0.05, method=method, weighting=weighting
    )
    expected = _naive_dsr(q_spatial, g_spatial, 0.05, method, weighting)
    np.testing.assert_array_equal(result.indices, np.argsort(distmat, axis=1, kind="stable"))
    got = np.zeros((3, 5))
    np.put_along_axis(got, result.indices, result.distances, axis=1)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_only_top_k_candidates_are_scored() -> None:
    rng = np.random.default_rng(2)
    q_spatial, g_spatial = _maps(rng, 4, 6, 2, 2), _maps(rng, 9, 6, 2, 2)
    distmat = rng.random((4, 9)).astype(np.float32)
    result = dsr_distances(q_spatial, g_spatial, distmat, top_k=3, ridge=1e-3)
    expected = _naive_dsr(q_spatial, g_spatial, 1e-3, "reconstruction", "uniform")
    np.testing.assert_array_equal(result.indices, np.argsort(distmat, axis=1)[:, :3])
    np.testing.assert_allclose(
        result.distances, np.take_along_axis(expected, result.indices, axis=1), atol=1e-4
    )


def test_small_memory_budget_gives_the_same_distances(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    q_spatial, g_spatial = _maps(rng, 5, 6, 3, 2), _maps(rng, 8, 6, 2, 3)
    distmat = rng.random((5, 8)).astype(np.float32)
    whole = dsr_distances(q_spatial, g_spatial, distmat, top_k=4)
    monkeypatch.setattr(dsr_module, "MEMORY_BUDGET_BYTES", 1)  # one item / one pair at a time
    chunked = dsr_distances(q_spatial, g_spatial, distmat, top_k=4)
    np.testing.assert_array_equal(chunked.indices, whole.indices)
    np.testing.assert_allclose(chunked.distances, whole.distances, atol=1e-6)


def test_a_cropped_query_is_reconstructed_by_its_own_gallery_image() -> None:
    rng = np.random.default_rng(4)
    # 32 channels, 6×4 = 24 gallery locations: a gallery map cannot rebuild arbitrary vectors
    g_spatial = np.abs(_maps(rng, 6, 32, 6, 4))
    q_spatial = g_spatial[[2, 4], :, 1:4, :].copy()  # upper-body crops of items 2 and 4
    distmat = np.full((2, 6), 0.5, dtype=np.float32)
    for method in ("reconstruction", "best_match"):
        result = dsr_distances(q_spatial, g_spatial, distmat, top_k=6, method=method)  # type: ignore[arg-type]
        got = np.zeros((2, 6))
        np.put_along_axis(got, result.indices, result.distances, axis=1)
        assert got[0, 2] < 1e-2 and got[1, 4] < 1e-2
        others = np.delete(got, [2, 4], axis=1)
        assert others.min() > 10 * max(got[0, 2], got[1, 4], 1e-4)
        assert others.min() > 0.05


def _toy() -> tuple[np.ndarray, DsrDistances]:
    rng = np.random.default_rng(5)
    distmat = rng.random((6, 30)).astype(np.float32) * 2
    indices = top_k_candidates(distmat, 10)
    return distmat, DsrDistances(indices=indices, distances=rng.random((6, 10)).astype(np.float32))


def test_weight_zero_keeps_the_global_ranking() -> None:
    distmat, dsr = _toy()
    fused = fuse_dsr(distmat, dsr, 0.0)
    assert fused.dtype == np.float32 and fused.shape == distmat.shape
    np.testing.assert_array_equal(
        np.argsort(fused, axis=1, kind="stable"), np.argsort(distmat, axis=1, kind="stable")
    )


def test_weight_one_ranks_candidates_by_dsr_then_the_rest_globally() -> None:
    distmat, dsr = _toy()
    fused = fuse_dsr(distmat, dsr, 1.0)
    for row in range(len(distmat)):
        candidates = dsr.indices[row][np.argsort(dsr.distances[row], kind="stable")]
        rest = [j for j in np.argsort(distmat[row], kind="stable") if j not in set(candidates)]
        expected = np.concatenate([candidates, rest])
        np.testing.assert_array_equal(np.argsort(fused[row], kind="stable"), expected)
        inside = np.zeros(30, dtype=bool)
        inside[dsr.indices[row]] = True
        assert fused[row, ~inside].min() > fused[row, inside].max()


def test_fusion_is_the_weighted_mean_of_min_max_rescaled_distances() -> None:
    distmat, dsr = _toy()
    candidate_global = np.take_along_axis(distmat, dsr.indices, axis=1).astype(np.float64)
    g_low, g_high = candidate_global.min(), candidate_global.max()
    d_low, d_high = float(dsr.distances.min()), float(dsr.distances.max())
    fused = fuse_dsr(distmat, dsr, 0.3)
    for row, column in [(0, 0), (3, 5), (5, 9)]:
        j = dsr.indices[row, column]
        expected = 0.7 * (distmat[row, j] - g_low) / (g_high - g_low) + 0.3 * (
            dsr.distances[row, column] - d_low
        ) / (d_high - d_low)
        assert fused[row, j] == pytest.approx(expected, abs=1e-6)


def test_choose_dsr_weight_takes_the_first_best_score_and_ignores_nan() -> None:
    distmat, dsr = _toy()
    weights = [0.0, 0.25, 0.5, 0.75, 1.0]
    scripted = iter([0.1, math.nan, 0.6, 0.6, 0.2])
    seen: list[np.ndarray] = []

    def evaluate(fused: np.ndarray) -> float:
        seen.append(fused)
        return next(scripted)

    best, scores = choose_dsr_weight(distmat, dsr, evaluate, weights=weights)
    assert best == 0.5
    np.testing.assert_array_equal(scores, [0.1, math.nan, 0.6, 0.6, 0.2])
    for weight, fused in zip(weights, seen, strict=True):
        np.testing.assert_array_equal(fused, fuse_dsr(distmat, dsr, weight))


def test_choose_dsr_weight_finds_the_weight_that_recovers_partial_matches() -> None:
    rng = np.random.default_rng(6)
    g_spatial = np.abs(_maps(rng, 8, 32, 6, 4))
    q_spatial = g_spatial[:4, :, :3, :].copy()  # query i is a crop of gallery item i
    distmat = rng.random((4, 8)).astype(np.float32)  # an uninformative global distance
    dsr = dsr_distances(q_spatial, g_spatial, distmat, top_k=8)

    def rank1(fused: np.ndarray) -> float:
        return float(np.mean(np.argmin(fused, axis=1) == np.arange(4)))

    best, scores = choose_dsr_weight(distmat, dsr, rank1, weights=[0.0, 1.0])
    assert best == 1.0 and scores[1] == 1.0


def test_bad_inputs_raise_evaluation_errors() -> None:
    rng = np.random.default_rng(7)
    q_spatial, g_spatial = _maps(rng, 2, 4, 2, 2), _maps(rng, 3, 4, 2, 2)
    distmat = rng.random((2, 3)).astype(np.float32)
    with pytest.raises(EvaluationError, match="shape"):
        dsr_distances(q_spatial, g_spatial, distmat.T)
    with pytest.raises(EvaluationError, match="channels"):
        dsr_distances(q_spatial, _maps(rng, 3, 5, 2, 2), distmat)
    with pytest.raises(EvaluationError, match="ridge"):
        dsr_distances(q_spatial, g_spatial, distmat, ridge=0.0)
    with pytest.raises(EvaluationError, match="NaN"):
        dsr_distances(q_spatial, g_spatial, np.full((2, 3), np.nan, dtype=np.float32))
    with pytest.raises(EvaluationError, match="spatial"):
        dsr_distances(q_spatial[0], g_spatial, distmat)
    dsr = dsr_distances(q_spatial, g_spatial, distmat, top_k=2)
    with pytest.raises(EvaluationError, match="weight"):
        fuse_dsr(distmat, dsr, 1.5)
    with pytest.raises(EvaluationError, match="candidates"):
        fuse_dsr(distmat[:1], dsr, 0.5)
    with pytest.raises(EvaluationError, match="at least one"):
        choose_dsr_weight(distmat, dsr, lambda d: 0.0, weights=[])
