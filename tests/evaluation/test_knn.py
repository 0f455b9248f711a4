"""Exact neighbour search against a dense argsort, on the brute-force and low-rank paths."""

import numpy as np
import pytest
import torch

from reid_platform.errors import EvaluationError
from reid_platform.evaluation import rerank_projected_search
from reid_platform.evaluation.knn import (
    Neighbours,
    merge_neighbours,
    nearest_neighbours,
    neighbours_from_distances,
)
from reid_platform.evaluation.rerank_projected_search import projected_search
from reid_platform.evaluation.rerank_scores import ScoreSpace

METRICS = ["cosine", "euclidean", "euclidean_squared"]


def _dense(features: np.ndarray, metric: str) -> np.ndarray:
    """(n, n) float64 distances, the textbook way."""
    x = features.astype(np.float64)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
        return 1.0 - x @ x.T
    norms = (x**2).sum(1)
    squared = np.maximum(norms[:, None] + norms[None, :] - 2.0 * x @ x.T, 0.0)
    return squared if metric == "euclidean_squared" else np.sqrt(squared)


def _check(neighbours: Neighbours, features: np.ndarray, metric: str, k: int) -> None:
    dense = _dense(features, metric)
    expected = np.argsort(dense, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(neighbours.indices, expected)
    picked = np.take_along_axis(dense, expected, axis=1)
    # Euclidean distances near 0 are square roots of rounding noise: compare their squares.
    power = 2 if metric == "euclidean" else 1
    scale = float(np.abs(dense).max()) ** power
    got = neighbours.distances.astype(np.float64) ** power
    np.testing.assert_allclose(got, picked**power, atol=1e-5 * scale)
    if neighbours.farthest is not None:
        farthest = neighbours.farthest.astype(np.float64) ** power
        np.testing.assert_allclose(farthest, dense.max(1) ** power, atol=1e-5 * scale)


def _low_rank(n: int, dim: int, rank: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, dim))
    return (latent + noise * rng.standard_normal((n, dim)) + 3.0).astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
def test_small_brute_force_matches_argsort(metric: str) -> None:
    features = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    _check(nearest_neighbours(features, 7, metric=metric, farthest=True), features, metric, 7)  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", METRICS)
def test_low_rank_search_certifies_and_matches_argsort(metric: str) -> None:
    features = _low_rank(420, 512, 24, 0.02, seed=1)
    space = ScoreSpace(features, metric)  # type: ignore[arg-type]
    _, _, _, failed = projected_search(space, 11, farthest=True)
    assert len(failed) < 0.2 * len(features)  # the low-rank path really answered most rows
    neighbours = nearest_neighbours(features, 11, metric=metric, farthest=True)  # type: ignore[arg-type]
    _check(neighbours, features, metric, 11)


def test_full_rank_data_falls_back_to_brute_force() -> None:
    features = np.random.default_rng(2).standard_normal((400, 512)).astype(np.float32)
    space = ScoreSpace(features, "euclidean")
    _, _, _, failed = projected_search(space, 5, farthest=True)
    assert len(failed) > 0.5 * len(features)  # isotropic noise: bounds too loose to certify
    _check(
        nearest_neighbours(features, 5, metric="euclidean", farthest=True), features, "euclidean", 5
    )


@pytest.mark.parametrize("metric", ["euclidean", "euclidean_squared"])
def test_ties_are_ordered_by_index(metric: str) -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 3, (20, 4))
    features = base[rng.integers(0, 20, 60)].astype(np.float32)  # duplicates and tied distances
    _check(nearest_neighbours(features, 9, metric=metric, farthest=True), features, metric, 9)  # type: ignore[arg-type]


def test_ties_in_a_low_rank_search() -> None:
    features = _low_rank(300, 512, 16, 0.0, seed=4)
    features = np.round(features)[np.random.default_rng(4).integers(0, 300, 420)]
    _check(
        nearest_neighbours(features, 6, metric="euclidean_squared"),
        features,
        "euclidean_squared",
        6,
    )


def test_k_is_capped_at_the_number_of_rows() -> None:
    features = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    neighbours = nearest_neighbours(features, 10, metric="euclidean")
    assert neighbours.indices.shape == (4, 4)
    _check(neighbours, features, "euclidean", 4)


def test_from_distances_and_merge() -> None:
    rng = np.random.default_rng(6)
    distances = rng.integers(0, 5, (7, 12)).astype(np.float32)  # many ties
    whole = neighbours_from_distances(distances, 5)
    np.testing.assert_array_equal(whole.indices, np.argsort(distances, 1, kind="stable")[:, :5])
    left = neighbours_from_distances(distances[:, :6], 5)
    right = neighbours_from_distances(distances[:, 6:], 5)
    right = Neighbours(right.indices + 6, right.distances, right.farthest)
    merged = merge_neighbours(left, right, 5)
    np.testing.assert_array_equal(merged.indices, whole.indices)
    assert merged.farthest is not None
    np.testing.assert_array_equal(merged.farthest, distances.max(1))


@pytest.mark.parametrize("stored_entries", [1 << 26, 90 * 400, 0])
def test_bounds_reused_by_symmetry_equal_the_full_product(
    stored_entries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candidates from the half-stored, half-transposed bounds (all rows split at n/2, at a
    smaller split, or none) equal a top-k over the whole bound matrix left @ rightᵀ."""
    features = _low_rank(500, 512, 24, 0.05, seed=8)
    space = ScoreSpace(features, "euclidean")  # biases: the transposed half must swap them
    left, right, _ = rerank_projected_search._bound_factors(space, 256)
    monkeypatch.setattr(rerank_projected_search, "BLOCK_ENTRIES", 64 * 500)  # several blocks
    monkeypatch.setattr(rerank_projected_search, "STORED_BOUND_ENTRIES", stored_entries)
    got = rerank_projected_search._candidates(left, right, space.bias, 30, 5)
    full = (left.double() @ right.double().T).numpy()
    order = np.argsort(-full, axis=1, kind="stable")
    scale = float(np.abs(full).max())
    np.testing.assert_allclose(got[1], np.take_along_axis(full, got[0], 1), atol=1e-5 * scale)
    np.testing.assert_allclose(
        got[1], np.take_along_axis(full, order[:, :30], 1), atol=1e-5 * scale
    )
    np.testing.assert_allclose(got[3], np.take_along_axis(full, got[2], 1), atol=1e-5 * scale)
    smallest = np.sort(full, axis=1)[:, :5]
    np.testing.assert_allclose(got[3], smallest, atol=1e-5 * scale)


@pytest.mark.parametrize("metric", METRICS)
def test_a_space_of_stacked_blocks_equals_one_of_the_stack(metric: str) -> None:
    rng = np.random.default_rng(9)
    first, second = rng.standard_normal((30, 8)), rng.standard_normal((50, 8)).astype(np.float32)
    kept = first.copy(), second.copy()
    stacked = ScoreSpace((first, second), metric)  # type: ignore[arg-type]
    whole = ScoreSpace(np.concatenate([first, second]).astype(np.float32), metric)  # type: ignore[arg-type]
    torch.testing.assert_close(stacked.z, whole.z)
    torch.testing.assert_close(stacked.bias, whole.bias)
    np.testing.assert_array_equal(first, kept[0])  # the inputs are never changed in place
    np.testing.assert_array_equal(second, kept[1])
    ScoreSpace(second, metric)  # type: ignore[arg-type]
    np.testing.assert_array_equal(second, kept[1])
    part = stacked.part(slice(30, None))
    torch.testing.assert_close(part.z, whole.z[30:])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="CUDA"):
        nearest_neighbours(np.ones((3, 2), np.float32), 2, metric="cosine", device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_path_matches_argsort() -> None:
    features = _low_rank(300, 64, 8, 0.1, seed=7)
    neighbours = nearest_neighbours(features, 8, metric="euclidean", farthest=True, device="cuda")
    _check(neighbours, features, "euclidean", 8)
