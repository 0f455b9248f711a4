"""Miners: from a batch's distance matrix, one positive and one negative distance per anchor.

Positives and negatives follow `pairs.pair_masks` (the anchor is never its own positive).
Anchors without a positive or a negative come back with `valid` False and finite placeholder
distances (0), so a loss can average over the valid ones without NaN.
"""

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from reid_platform.losses.pairs import pair_masks, valid_anchors


class MinedDistances(NamedTuple):
    """Per-anchor distances of a batch of N anchors.

    positive: (N,) the anchor-positive distance d_ap (0 where not valid).
    negative: (N,) the anchor-negative distance d_an (0 where not valid).
    valid: (N,) bool, anchors that have at least one positive and one negative.
    """

    positive: Tensor
    negative: Tensor
    valid: Tensor


class Miner(Protocol):
    """distances (N, N) between the batch's features, targets (N,) → `MinedDistances`."""

    def __call__(self, distances: Tensor, targets: Tensor) -> MinedDistances: ...


def _check_square(distances: Tensor, targets: Tensor) -> None:
    n = targets.shape[0]
    if distances.shape != (n, n):
        raise ValueError(
            f"a miner needs distances of shape ({n}, {n}) for {n} targets, "
            f"got {tuple(distances.shape)}"
        )


@dataclass(frozen=True, slots=True)
class BatchHardMiner:
    """Batch-hard mining (Hermans et al. 2017): d_ap = max over positives, d_an = min over
    negatives, per anchor. The gradient reaches only the two selected pairs."""

    def __call__(self, distances: Tensor, targets: Tensor) -> MinedDistances:
        _check_square(distances, targets)
        positive, negative = pair_masks(targets)
        valid = valid_anchors(positive, negative)
        zero = distances.new_zeros(())
        # Masked entries are replaced by ±inf so they never win max/min; rows that have no
        # candidate at all are then replaced by 0 through `where`, whose backward sends those
        # rows zero gradient.
        hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(dim=1)
        hardest_negative = distances.masked_fill(~negative, float("inf")).amin(dim=1)
        return MinedDistances(
            positive=torch.where(valid, hardest_positive, zero),
            negative=torch.where(valid, hardest_negative, zero),
            valid=valid,
        )


def _softmax_weighted(values: Tensor, mask: Tensor) -> Tensor:
    """Σ_j w_ij · values_ij with w_i = softmax(values_i) over mask_i (values, mask: (N, N)).

    Rows with an empty mask give 0 (their logits are zeroed so softmax stays finite).
    """
    has_any = mask.any(dim=1, keepdim=True)
    logits = values.masked_fill(~mask, float("-inf"))
    logits = torch.where(has_any, logits, values.new_zeros(()))
    weights = torch.softmax(logits, dim=1) * mask
    return (weights * values).sum(dim=1)


@dataclass(frozen=True, slots=True)
class WeightedMiner:
    """Softmax-weighted mining, the weighted regularised triplet of AGW (Ye et al. 2021).

    d_ap = Σ_p softmax(d_p) · d_p over the anchor's positives, d_an = Σ_n softmax(−d_n) · d_n
    over its negatives: every pair contributes, the far positives and close negatives most.
    The weights are not detached (as in AGW and the reference).
    """

    def __call__(self, distances: Tensor, targets: Tensor) -> MinedDistances:
        _check_square(distances, targets)
        positive, negative = pair_masks(targets)
        valid = valid_anchors(positive, negative)
        zero = distances.new_zeros(())
        weighted_positive = _softmax_weighted(distances, positive)
        weighted_negative = -_softmax_weighted(-distances, negative)
        return MinedDistances(
            positive=torch.where(valid, weighted_positive, zero),
            negative=torch.where(valid, weighted_negative, zero),
            valid=valid,
        )
