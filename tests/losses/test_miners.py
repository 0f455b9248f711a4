"""Miners against per-anchor loops, a hand-worked case, and anchors without partners."""

import math

import pytest
import torch

from reid_platform.losses import (
    BatchHardMiner,
    Miner,
    WeightedMiner,
    euclidean_distance,
    pair_masks,
)


def _batch(seed: int, ids: int = 4, per_id: int = 3, dim: int = 8) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(ids * per_id, dim, generator=generator)
    targets = torch.arange(ids).repeat_interleave(per_id)
    order = torch.randperm(len(targets), generator=generator)
    return features[order], targets[order]


def _partners(targets: list[int], anchor: int) -> tuple[list[int], list[int]]:
    positives = [j for j, t in enumerate(targets) if t == targets[anchor] and j != anchor]
    negatives = [j for j, t in enumerate(targets) if t != targets[anchor]]
    return positives, negatives


def _softmax_average(values: list[float]) -> float:
    top = max(values)
    weights = [math.exp(v - top) for v in values]
    return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)


def test_pair_masks_exclude_the_anchor_itself() -> None:
    positive, negative = pair_masks(torch.tensor([0, 0, 1]))
    assert positive.tolist() == [[False, True, False], [True, False, False], [False] * 3]
    assert negative.tolist() == [[False, False, True], [False, False, True], [True, True, False]]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_miners_match_loops(seed: int) -> None:
    features, targets = _batch(seed)
    distances = euclidean_distance(features, features)
    d, t = distances.tolist(), targets.tolist()
    hard = BatchHardMiner()(distances, targets)
    weighted = WeightedMiner()(distances, targets)
    for anchor in range(len(t)):
        positives, negatives = _partners(t, anchor)
        assert hard.positive[anchor].item() == pytest.approx(max(d[anchor][j] for j in positives))
        assert hard.negative[anchor].item() == pytest.approx(min(d[anchor][j] for j in negatives))
        expected_ap = _softmax_average([d[anchor][j] for j in positives])
        expected_an = -_softmax_average([-d[anchor][j] for j in negatives])
        assert weighted.positive[anchor].item() == pytest.approx(expected_ap, rel=1e-5)
        assert weighted.negative[anchor].item() == pytest.approx(expected_an, rel=1e-5)
    assert hard.valid.all() and weighted.valid.all()


def test_hand_worked_one_dimensional_batch() -> None:
    # Identity 0 at 0 and 2, identity 1 at 3 and 4 on a line.
    features = torch.tensor([[0.0], [2.0], [3.0], [4.0]])
    targets = torch.tensor([0, 0, 1, 1])
    distances = euclidean_distance(features, features)
    hard = BatchHardMiner()(distances, targets)
    torch.testing.assert_close(hard.positive, torch.tensor([2.0, 2.0, 1.0, 1.0]))
    torch.testing.assert_close(hard.negative, torch.tensor([3.0, 1.0, 1.0, 2.0]))
    weighted = WeightedMiner()(distances, targets)
    # Anchor 0 has one positive (2) and negatives at 3 and 4, weighted by softmax(−3, −4).
    e3, e4 = math.exp(-3.0), math.exp(-4.0)
    assert weighted.positive[0].item() == pytest.approx(2.0)
    assert weighted.negative[0].item() == pytest.approx((3 * e3 + 4 * e4) / (e3 + e4))


@pytest.mark.parametrize("miner", [BatchHardMiner(), WeightedMiner()])
def test_anchors_without_partners_are_invalid_and_finite(miner: Miner) -> None:
    # Identity 2 has a single image: no positive. One identity only: no negatives at all.
    features = torch.randn(5, 4, requires_grad=True)
    for targets, valid in (
        (torch.tensor([0, 0, 1, 1, 2]), [True, True, True, True, False]),
        (torch.tensor([0, 0, 0, 0, 0]), [False] * 5),
        (torch.tensor([0, 1, 2, 3, 4]), [False] * 5),
    ):
        mined = miner(euclidean_distance(features, features), targets)
        assert mined.valid.tolist() == valid
        assert torch.isfinite(mined.positive).all() and torch.isfinite(mined.negative).all()
        invalid = ~mined.valid
        assert (mined.positive[invalid] == 0).all() and (mined.negative[invalid] == 0).all()
        features.grad = None
        (mined.positive.sum() - mined.negative.sum()).backward()
        assert features.grad is not None and torch.isfinite(features.grad).all()


def test_miner_checks_the_matrix_shape() -> None:
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        BatchHardMiner()(torch.zeros(3, 4), torch.tensor([0, 1, 2]))
