"""Which pairs of a batch are positives and negatives, and the mean over anchors that have both.

Every pairwise loss and miner in this package follows one convention: a *positive* pair is two
different images of the same identity (the anchor itself is never its own positive), a
*negative* pair two images of different identities. An anchor without a positive (its identity
has one image in the batch) or without a negative (the batch holds one identity) has no triplet
and no pair term; it is left out of the mean, and a batch with no valid anchor gives a zero loss
that is still connected to the graph, so `backward()` works and yields zero gradients.
"""

import torch
from torch import Tensor


def pair_masks(targets: Tensor) -> tuple[Tensor, Tensor]:
    """Positive and negative pair masks of a batch.

    targets: (N,) identity labels.
    Returns `(positive, negative)`, both (N, N) bool: `positive[i, j]` when i ≠ j share a label,
    `negative[i, j]` when their labels differ.
    """
    if targets.dim() != 1:
        raise ValueError(f"targets must have shape (N,), got {tuple(targets.shape)}")
    same = targets.unsqueeze(0) == targets.unsqueeze(1)
    eye = torch.eye(len(targets), dtype=torch.bool, device=targets.device)
    return same & ~eye, ~same


def valid_anchors(positive: Tensor, negative: Tensor) -> Tensor:
    """(N,) bool: anchors with at least one positive and one negative (masks (N, N) bool)."""
    return positive.any(dim=1) & negative.any(dim=1)


def mean_over_valid(per_anchor: Tensor, valid: Tensor) -> Tensor:
    """Mean of `per_anchor` (N,) over the `valid` (N,) bool anchors; 0 when none is valid.

    `per_anchor` must be finite everywhere (invalid entries are multiplied by zero, and
    0 × inf would be NaN); the result keeps the graph, so an all-invalid batch back-propagates
    zero gradients instead of failing.
    """
    weights = valid.to(per_anchor.dtype)
    return (per_anchor * weights).sum() / weights.sum().clamp(min=1.0)


def check_batch(features: Tensor, targets: Tensor) -> None:
    """Raise a ValueError unless features are (N, D) and targets (N,)."""
    if features.dim() != 2:
        raise ValueError(f"features must have shape (N, D), got {tuple(features.shape)}")
    if targets.shape != (features.shape[0],):
        raise ValueError(
            f"targets must have shape ({features.shape[0]},) to match the features, "
            f"got {tuple(targets.shape)}"
        )


def masked_logsumexp(values: Tensor, mask: Tensor) -> Tensor:
    """log Σ_j exp(values_ij) over the j where mask_ij (values, mask: (N, N)) → (N,).

    Rows with an empty mask give 0, a finite placeholder the caller must mask out: a row of
    only −inf would give −inf and a NaN gradient.
    """
    has_any = mask.any(dim=1, keepdim=True)
    logits = values.masked_fill(~mask, float("-inf"))
    logits = torch.where(has_any, logits, values.new_zeros(()))
    return torch.logsumexp(logits, dim=1)
