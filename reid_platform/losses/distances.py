"""Pairwise distances between two sets of features, as small components a loss is built from.

Every distance maps x (N, D) and y (M, D) to a (N, M) matrix and is computed in float32 with
autocast disabled: the expanded form ‖x‖² + ‖y‖² − 2x·y cancels badly in half precision.
"""

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor
from torch.nn.functional import normalize

EUCLIDEAN_CLAMP = 1e-12
"""Squared distances are clamped here before the square root (as the reference does): the
gradient of sqrt at 0 is infinite, and the clamp turns it into 0 for identical features."""


class Distance(Protocol):
    """x (N, D), y (M, D) → distances (N, M); larger means less alike."""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor: ...


def _float32_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"distances need x (N, D) and y (M, D), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x.float(), y.float()


def squared_euclidean_distance(x: Tensor, y: Tensor) -> Tensor:
    """‖x_i − y_j‖² (N, M), clamped at 0 against rounding below zero."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = _float32_pair(x, y)
        squared = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * x @ y.T
        return squared.clamp(min=0.0)


def euclidean_distance(x: Tensor, y: Tensor) -> Tensor:
    """‖x_i − y_j‖ (N, M): sqrt of the squared distance clamped at `EUCLIDEAN_CLAMP`.

    Identical features give 1e-6 rather than 0, with a zero (not infinite) gradient.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = _float32_pair(x, y)
        squared = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * x @ y.T
        return squared.clamp(min=EUCLIDEAN_CLAMP).sqrt()


def cosine_similarity_matrix(x: Tensor, y: Tensor) -> Tensor:
    """cos(x_i, y_j) (N, M) in [−1, 1]; a zero vector has similarity 0 with everything."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = _float32_pair(x, y)
        return normalize(x, dim=1) @ normalize(y, dim=1).T


def cosine_distance(x: Tensor, y: Tensor) -> Tensor:
    """1 − cos(x_i, y_j) (N, M), in [0, 2].

    The reference's `NORM_FEAT` distance is 2 − 2cos, twice this one (its margins halve here).
    """
    return 1.0 - cosine_similarity_matrix(x, y)


@dataclass(frozen=True, slots=True)
class EuclideanDistance:
    """‖x_i − y_j‖, see `euclidean_distance`."""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return euclidean_distance(x, y)


@dataclass(frozen=True, slots=True)
class SquaredEuclideanDistance:
    """‖x_i − y_j‖², see `squared_euclidean_distance`."""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return squared_euclidean_distance(x, y)


@dataclass(frozen=True, slots=True)
class CosineDistance:
    """1 − cos(x_i, y_j), see `cosine_distance`."""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return cosine_distance(x, y)


@dataclass(frozen=True, slots=True)
class NormalizedDistance:
    """Another distance applied to L2-normalised features (the triplet's `normalize_features`).

    `NormalizedDistance(SquaredEuclideanDistance())` is 2 − 2cos, the reference's `NORM_FEAT`.
    """

    inner: Distance

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return self.inner(normalize(x.float(), dim=1), normalize(y.float(), dim=1))
