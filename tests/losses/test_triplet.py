"""Triplet loss against loops over anchors and over all triplets, by hand, and on edge cases."""

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torch.nn.functional import margin_ranking_loss, softplus

from reid_platform.losses import (
    BatchHardMiner,
    CosineDistance,
    Distance,
    EuclideanDistance,
    Miner,
    NormalizedDistance,
    TripletLoss,
    WeightedMiner,
)

PairDistance = Callable[[Tensor, Tensor], Tensor]
Oracle = Callable[[Tensor, Tensor, PairDistance, float | None], Tensor]


def _euclid(a: Tensor, b: Tensor) -> Tensor:
    return ((a - b) ** 2).sum().sqrt()


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    return 1 - (a * b).sum() / (a.norm() * b.norm())


def _normalized_euclid(a: Tensor, b: Tensor) -> Tensor:
    return _euclid(a / a.norm(), b / b.norm())


def _batch(seed: int, ids: int = 4, per_id: int = 3, dim: int = 8) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(ids * per_id, dim, generator=generator, dtype=torch.float64)
    targets = torch.arange(ids).repeat_interleave(per_id)
    order = torch.randperm(len(targets), generator=generator)
    return features[order], targets[order]


def _margin_rule(gap: Tensor, margin: float | None) -> Tensor:
    return softplus(gap) if margin is None else torch.clamp(gap + margin, min=0)


def _total(values: list[Tensor]) -> Tensor:
    return torch.stack(values).sum()


def _pair_table(features: Tensor, distance: PairDistance) -> list[list[Tensor]]:
    return [[distance(a, b) for b in features] for a in features]


def _oracle_all_triplets(
    features: Tensor, targets: Tensor, distance: PairDistance, margin: float | None
) -> Tensor:
    """Batch-hard: per anchor, the worst loss over all its (positive, negative) triplets."""
    t, d = targets.tolist(), _pair_table(features, distance)
    per_anchor = []
    for a in range(len(t)):
        losses = [
            _margin_rule(d[a][p] - d[a][n], margin)
            for p in range(len(t))
            if p != a and t[p] == t[a]
            for n in range(len(t))
            if t[n] != t[a]
        ]
        if losses:
            per_anchor.append(torch.stack(losses).max())
    return torch.stack(per_anchor).mean()


def _oracle_weighted(
    features: Tensor, targets: Tensor, distance: PairDistance, margin: float | None
) -> Tensor:
    """AGW's weighted triplet: softmax-weighted d_ap and d_an per anchor, then the margin rule."""
    t, d = targets.tolist(), _pair_table(features, distance)
    per_anchor = []
    for a in range(len(t)):
        pos = [d[a][p] for p in range(len(t)) if p != a and t[p] == t[a]]
        neg = [d[a][n] for n in range(len(t)) if t[n] != t[a]]
        if not pos or not neg:
            continue
        d_ap = _total([torch.exp(dp) * dp for dp in pos]) / _total([torch.exp(dp) for dp in pos])
        d_an = _total([torch.exp(-dn) * dn for dn in neg]) / _total([torch.exp(-dn) for dn in neg])
        per_anchor.append(_margin_rule(d_ap - d_an, margin))
    return torch.stack(per_anchor).mean()


DISTANCES = [
    (EuclideanDistance(), _euclid),
    (CosineDistance(), _cosine),
    (NormalizedDistance(EuclideanDistance()), _normalized_euclid),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.3, 1.0, None])
@pytest.mark.parametrize(("distance", "pair_distance"), DISTANCES)
@pytest.mark.parametrize(
    ("miner", "oracle"),
    [(BatchHardMiner(), _oracle_all_triplets), (WeightedMiner(), _oracle_weighted)],
)
def test_triplet_matches_loop_oracles(
    seed: int,
    margin: float | None,
    distance: Distance,
    pair_distance: PairDistance,
    miner: Miner,
    oracle: Oracle,
) -> None:
    features, targets = _batch(seed)
    ours_input = features.clone().float().requires_grad_(True)
    oracle_input = features.clone().requires_grad_(True)
    loss = TripletLoss(distance=distance, miner=miner, margin=margin)(ours_input, targets)
    expected = oracle(oracle_input, targets, pair_distance, margin)
    torch.testing.assert_close(loss.double(), expected, atol=1e-5, rtol=1e-5)
    loss.backward()
    expected.backward()
    assert ours_input.grad is not None and oracle_input.grad is not None
    torch.testing.assert_close(ours_input.grad.double(), oracle_input.grad, atol=1e-4, rtol=1e-4)


def test_fixed_margin_equals_margin_ranking_loss() -> None:
    features, targets = _batch(7)
    features = features.float()
    distances = EuclideanDistance()(features, features)
    mined = BatchHardMiner()(distances, targets)
    ranking = margin_ranking_loss(
        mined.negative, mined.positive, torch.ones_like(mined.positive), margin=0.3
    )
    loss = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=0.3)
    torch.testing.assert_close(loss(features, targets), ranking)


def test_hand_worked_one_dimensional_batch() -> None:
    # Identity 0 at 0 and 2, identity 1 at 3 and 4: batch-hard (d_ap, d_an) per anchor are
    # (2, 3), (2, 1), (1, 1), (1, 2), so d_ap − d_an = −1, 1, 0, −1.
    features = torch.tensor([[0.0], [2.0], [3.0], [4.0]])
    targets = torch.tensor([0, 0, 1, 1])
    fixed = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=1.5)
    assert fixed(features, targets).item() == pytest.approx((0.5 + 2.5 + 1.5 + 0.5) / 4)
    soft = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=None)
    expected = (2 * math.log1p(math.exp(-1)) + math.log1p(math.e) + math.log(2)) / 4
    assert soft(features, targets).item() == pytest.approx(expected)


def test_anchors_without_positive_are_left_out_of_the_mean() -> None:
    # The singleton at 10 is still a negative of the others, but not an anchor.
    features = torch.tensor([[0.0], [2.0], [3.0], [4.0], [10.0]])
    targets = torch.tensor([0, 0, 1, 1, 2])
    loss = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=1.5)
    assert loss(features, targets).item() == pytest.approx((0.5 + 2.5 + 1.5 + 0.5) / 4)


@pytest.mark.parametrize("miner", [BatchHardMiner(), WeightedMiner()])
@pytest.mark.parametrize("margin", [0.3, None])
@pytest.mark.parametrize(
    "targets",
    [torch.zeros(6, dtype=torch.long), torch.arange(6)],
    ids=["one-identity", "one-image-per-identity"],
)
def test_no_valid_anchor_gives_zero_with_a_graph(
    miner: Miner, margin: float | None, targets: Tensor
) -> None:
    features = torch.randn(6, 8, requires_grad=True)
    loss = TripletLoss(distance=EuclideanDistance(), miner=miner, margin=margin)(features, targets)
    assert loss.item() == 0.0
    loss.backward()
    assert features.grad is not None and (features.grad == 0).all()


@pytest.mark.parametrize("miner", [BatchHardMiner(), WeightedMiner()])
@pytest.mark.parametrize("distance", [EuclideanDistance(), CosineDistance()])
def test_all_equal_features_give_finite_loss_and_gradient(miner: Miner, distance: Distance) -> None:
    features = torch.ones(12, 8, requires_grad=True)
    targets = torch.arange(4).repeat_interleave(3)
    loss = TripletLoss(distance=distance, miner=miner, margin=0.3)(features, targets)
    assert loss.item() == pytest.approx(0.3, abs=1e-5)  # d_ap = d_an, so the margin remains
    loss.backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


def test_far_apart_features_keep_the_soft_margin_finite() -> None:
    features = torch.tensor([[0.0], [1e4], [1.0], [2.0]], requires_grad=True)
    targets = torch.tensor([0, 0, 1, 1])
    loss = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=None)
    value = loss(features, targets)
    assert torch.isfinite(value)
    value.backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="margin"):
        TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=-0.1)
    loss = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=0.3)
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        loss(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    assert "margin=0.3" in repr(loss) and "BatchHardMiner" in repr(loss)
