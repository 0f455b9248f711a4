"""Pairwise circle and CosFace losses against loops over pairs, by hand, and on edge cases."""

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from reid_platform.losses import PairwiseCircleLoss, PairwiseCosFaceLoss

Logit = Callable[[Tensor], Tensor]
Logits = tuple[Logit, Logit]


def _batch(seed: int, ids: int = 4, per_id: int = 3, dim: int = 8) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(ids * per_id, dim, generator=generator, dtype=torch.float64)
    targets = torch.arange(ids).repeat_interleave(per_id)
    order = torch.randperm(len(targets), generator=generator)
    return features[order], targets[order]


def _cos(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum() / (a.norm() * b.norm())


def _log_sum_exp(values: list[Tensor]) -> Tensor:
    top = max(v.item() for v in values)
    return top + torch.log(torch.stack([torch.exp(v - top) for v in values]).sum())


def _oracle(
    features: Tensor, targets: Tensor, positive_logit: Logit, negative_logit: Logit
) -> Tensor:
    """Per anchor, explicit loops over its positive and negative pairs; mean over anchors."""
    t = targets.tolist()
    per_anchor = []
    for a in range(len(t)):
        pos = [
            positive_logit(_cos(features[a], features[p]))
            for p in range(len(t))
            if p != a and t[p] == t[a]
        ]
        neg = [
            negative_logit(_cos(features[a], features[n])) for n in range(len(t)) if t[n] != t[a]
        ]
        if pos and neg:
            per_anchor.append(softplus(_log_sum_exp(pos) + _log_sum_exp(neg)))
    return torch.stack(per_anchor).mean()


def _circle_logits(scale: float, margin: float, detach: bool = True) -> Logits:
    def weight(value: Tensor) -> Tensor:
        return value.detach() if detach else value

    def positive(s: Tensor) -> Tensor:
        return -scale * torch.clamp(1 + margin - weight(s), min=0) * (s - (1 - margin))

    def negative(s: Tensor) -> Tensor:
        return scale * torch.clamp(weight(s) + margin, min=0) * (s - margin)

    return positive, negative


def _cosface_logits(scale: float, margin: float) -> Logits:
    return (lambda s: -scale * s), (lambda s: scale * (s + margin))


def _check_against_oracle(
    loss: nn.Module, oracle_logits: Logits, seed: int
) -> tuple[Tensor, Tensor]:
    features, targets = _batch(seed)
    ours_input = features.clone().float().requires_grad_(True)
    oracle_input = features.clone().requires_grad_(True)
    value = loss(ours_input, targets)
    expected = _oracle(oracle_input, targets, *oracle_logits)
    torch.testing.assert_close(value.double(), expected, atol=1e-4, rtol=1e-5)
    value.backward()
    expected.backward()
    assert ours_input.grad is not None and oracle_input.grad is not None
    torch.testing.assert_close(ours_input.grad.double(), oracle_input.grad, atol=1e-4, rtol=1e-4)
    return ours_input.grad, features


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("scale", "margin"), [(1.0, 0.25), (64.0, 0.25), (128.0, 0.4)])
def test_circle_matches_loop(seed: int, scale: float, margin: float) -> None:
    loss = PairwiseCircleLoss(scale=scale, margin=margin)
    _check_against_oracle(loss, _circle_logits(scale, margin), seed)


def test_circle_weights_are_detached() -> None:
    # The gradient matches the detached-α oracle above and differs from a non-detached one.
    grad, features = _check_against_oracle(
        PairwiseCircleLoss(scale=4.0, margin=0.25), _circle_logits(4.0, 0.25), seed=5
    )
    features.requires_grad_(True)
    _, targets = _batch(5)
    _oracle(features, targets, *_circle_logits(4.0, 0.25, detach=False)).backward()
    assert features.grad is not None
    assert not torch.allclose(grad.double(), features.grad, atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("scale", "margin"), [(1.0, 0.25), (64.0, 0.35), (128.0, 0.25)])
def test_cosface_matches_loop(seed: int, scale: float, margin: float) -> None:
    loss = PairwiseCosFaceLoss(scale=scale, margin=margin)
    _check_against_oracle(loss, _cosface_logits(scale, margin), seed)


def test_hand_worked_two_identities() -> None:
    # Unit vectors: identity 0 at angles 0 and 90°, identity 1 at 180° and 270°. Every anchor
    # has one positive with s_p = 0 and negatives with s_n ∈ {−1, 0}.
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    targets = torch.tensor([0, 0, 1, 1])
    gamma, m = 2.0, 0.25
    cosface = PairwiseCosFaceLoss(scale=gamma, margin=m)(features, targets)
    expected = math.log1p(math.exp(0.0) * (math.exp(gamma * (-1 + m)) + math.exp(gamma * m)))
    assert cosface.item() == pytest.approx(expected, rel=1e-6)
    # Circle: positive logit −γ(1+m)(0 − (1−m)); negatives: s_n=−1 has α_n = 0 (logit 0),
    # s_n = 0 has α_n = m and logit γ·m·(0 − m).
    circle = PairwiseCircleLoss(scale=gamma, margin=m)(features, targets)
    positive = gamma * (1 + m) * (1 - m)
    negatives = math.log(math.exp(0.0) + math.exp(-gamma * m * m))
    assert circle.item() == pytest.approx(math.log1p(math.exp(positive + negatives)), rel=1e-6)


LOSSES = [PairwiseCircleLoss(scale=64.0, margin=0.25), PairwiseCosFaceLoss(scale=64.0, margin=0.35)]


LOSSES_AND_ORACLES = [
    (PairwiseCircleLoss(scale=64.0, margin=0.25), _circle_logits(64.0, 0.25)),
    (PairwiseCosFaceLoss(scale=64.0, margin=0.35), _cosface_logits(64.0, 0.35)),
]


@pytest.mark.parametrize(("loss", "oracle_logits"), LOSSES_AND_ORACLES)
def test_anchors_without_positive_are_left_out(loss: nn.Module, oracle_logits: Logits) -> None:
    # A singleton identity is a negative of every other anchor but not an anchor itself; the
    # oracle skips anchors without positives, so equality shows it is left out of the mean.
    features, targets = _batch(4)
    features = torch.cat([features, torch.randn(1, 8, dtype=torch.float64)])
    targets = torch.cat([targets, torch.tensor([99])])
    value = loss(features.float(), targets)
    expected = _oracle(features, targets, *oracle_logits)
    torch.testing.assert_close(value.double(), expected, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(
    "targets",
    [torch.zeros(6, dtype=torch.long), torch.arange(6)],
    ids=["one-identity", "one-image-per-identity"],
)
def test_no_valid_anchor_gives_zero_with_a_graph(loss: nn.Module, targets: Tensor) -> None:
    features = torch.randn(6, 8, requires_grad=True)
    value = loss(features, targets)
    assert value.item() == 0.0
    value.backward()
    assert features.grad is not None and (features.grad == 0).all()


@pytest.mark.parametrize("loss", LOSSES)
def test_all_equal_features_give_finite_loss_and_gradient(loss: nn.Module) -> None:
    features = torch.ones(12, 8, requires_grad=True)
    value = loss(features, torch.arange(4).repeat_interleave(3))
    assert torch.isfinite(value)
    value.backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scale"):
        PairwiseCircleLoss(scale=0.0, margin=0.25)
    with pytest.raises(ValueError, match="scale"):
        PairwiseCosFaceLoss(scale=-1.0, margin=0.25)
    with pytest.raises(ValueError, match=r"features must have shape \(N, D\)"):
        PairwiseCosFaceLoss(scale=1.0, margin=0.25)(torch.zeros(4), torch.zeros(4))
