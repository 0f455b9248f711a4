"""Distances against per-pair loops, hand-worked values, and their edge cases."""

import math
from collections.abc import Callable

import pytest
import torch

from reid_platform.losses import (
    CosineDistance,
    Distance,
    EuclideanDistance,
    NormalizedDistance,
    SquaredEuclideanDistance,
    cosine_distance,
    cosine_similarity_matrix,
    euclidean_distance,
    squared_euclidean_distance,
)


def _loop(
    x: torch.Tensor, y: torch.Tensor, pair_distance: Callable[[list[float], list[float]], float]
) -> torch.Tensor:
    rows = [
        [pair_distance(x[i].tolist(), y[j].tolist()) for j in range(len(y))] for i in range(len(x))
    ]
    return torch.tensor(rows, dtype=torch.float64)


def _euclid(a: list[float], b: list[float]) -> float:
    return math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b, strict=True)))


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(p * q for p, q in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(p * p for p in a)) * math.sqrt(sum(q * q for q in b)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distances_match_per_pair_loops(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(5, 8, generator=generator), torch.randn(7, 8, generator=generator)
    euclid = _loop(x, y, _euclid)
    cos = _loop(x, y, _cos)
    torch.testing.assert_close(euclidean_distance(x, y).double(), euclid, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        squared_euclidean_distance(x, y).double(), euclid**2, atol=1e-4, rtol=1e-5
    )
    torch.testing.assert_close(cosine_similarity_matrix(x, y).double(), cos, atol=1e-6, rtol=0)
    torch.testing.assert_close(cosine_distance(x, y).double(), 1 - cos, atol=1e-6, rtol=0)
    assert euclidean_distance(x, y).shape == (5, 7)


def test_hand_worked_values() -> None:
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    y = torch.tensor([[0.0, 1.0], [6.0, 8.0]])
    expected = torch.tensor([[1.0, 10.0], [math.sqrt(18.0), 5.0]])
    torch.testing.assert_close(EuclideanDistance()(x, y), expected)
    torch.testing.assert_close(SquaredEuclideanDistance()(x, y), expected**2)
    # (3, 4) and (6, 8) point the same way; (0, 1) · (3, 4) / 5 = 0.8.
    torch.testing.assert_close(CosineDistance()(x[1:], y), torch.tensor([[0.2, 0.0]]))


def test_normalized_squared_euclidean_is_two_minus_two_cos() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(6, 8, generator=generator)
    normalized = NormalizedDistance(SquaredEuclideanDistance())(x, x)
    torch.testing.assert_close(normalized, 2.0 * CosineDistance()(x, x), atol=1e-5, rtol=0)
    # Scale-free: rescaled features give the same distances.
    scaled = NormalizedDistance(EuclideanDistance())(x * 10.0, x)
    unscaled = NormalizedDistance(EuclideanDistance())(x, x)
    torch.testing.assert_close(scaled, unscaled, atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    "distance", [EuclideanDistance(), SquaredEuclideanDistance(), CosineDistance()]
)
def test_identical_features_give_finite_gradients(distance: Distance) -> None:
    x = torch.ones(4, 8, requires_grad=True)
    matrix = distance(x, x)
    assert torch.isfinite(matrix).all()
    matrix.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_euclidean_of_identical_features_is_clamped() -> None:
    x = torch.zeros(2, 3)
    torch.testing.assert_close(euclidean_distance(x, x), torch.full((2, 2), 1e-6))


def test_float32_under_autocast() -> None:
    x = torch.randn(4, 8)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        result = euclidean_distance(x.bfloat16(), x.bfloat16())
    assert result.dtype == torch.float32


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\(N, D\) and y \(M, D\)"):
        euclidean_distance(torch.zeros(2, 3), torch.zeros(2, 4))
