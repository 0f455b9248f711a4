"""Every classifier layer: shapes, gradients, ONNX; hand-worked margin logits.

The hand-worked cases fix the cosines: class centres are unit axes, and a feature
(cos a, cos b) at unit length has exactly those cosines with them.
"""

import math

import pytest
import torch
from torch import Tensor, nn

from reid_platform.modeling.classifiers import (
    ArcFaceClassifier,
    CircleSoftmaxClassifier,
    CosFaceClassifier,
    LinearClassifier,
    target_mask,
)
from reid_platform.modeling.registry import CLASSIFIERS

IN_FEATURES, NUM_CLASSES = 8, 5

VARIANTS: dict[str, dict[str, float]] = {
    "linear": {},
    "cosface": {"scale": 16.0, "margin": 0.35},
    "arcface": {"scale": 16.0, "margin": 0.5},
    "circle": {"scale": 16.0, "margin": 0.25},
}


def make(kind: str, in_features: int = IN_FEATURES, num_classes: int = NUM_CLASSES) -> nn.Module:
    torch.manual_seed(0)
    return CLASSIFIERS.get(kind)(in_features=in_features, num_classes=num_classes, **VARIANTS[kind])


def features(batch: int, seed: int = 1) -> Tensor:
    return torch.randn(batch, IN_FEATURES, generator=torch.Generator().manual_seed(seed))


def targets(batch: int) -> Tensor:
    return torch.arange(batch) % NUM_CLASSES


def with_axes_centres(layer: nn.Module) -> nn.Module:
    """Class centres (1, 0), (0, 1), (-1, 0) for a 2-d, 3-class layer."""
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    return layer


def unit(cos_first_axis: float, sign: float = 1.0) -> Tensor:
    """A (1, 2) feature at cosine `cos_first_axis` with (1, 0); scaled to show norms don't count."""
    return 3.0 * torch.tensor([[cos_first_axis, sign * math.sqrt(1 - cos_first_axis**2)]])


def test_every_registered_classifier_is_covered() -> None:
    assert set(VARIANTS) == set(CLASSIFIERS.names())


@pytest.mark.parametrize("kind", VARIANTS)
def test_shapes_finite_and_scores_without_targets(kind: str) -> None:
    layer = make(kind)
    logits, scores = layer(features(6), targets(6))
    assert logits.shape == scores.shape == (6, NUM_CLASSES)
    assert torch.isfinite(logits).all() and torch.isfinite(scores).all()
    plain_logits, plain_scores = layer(features(6))
    torch.testing.assert_close(plain_scores, scores)
    torch.testing.assert_close(plain_logits, scores)


@pytest.mark.parametrize("kind", VARIANTS)
def test_weight_init_is_normal_0_01(kind: str) -> None:
    weight = make(kind, in_features=256, num_classes=400).weight
    assert weight.shape == (400, 256)
    assert abs(weight.std().item() - 0.01) < 5e-4
    assert abs(weight.mean().item()) < 5e-4


@pytest.mark.parametrize("kind", VARIANTS)
def test_gradients_reach_features_and_weight(kind: str) -> None:
    layer = make(kind)
    x = features(6).requires_grad_(True)
    logits, _ = layer(x, targets(6))
    torch.nn.functional.cross_entropy(logits, targets(6)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", VARIANTS)
def test_onnx_export_dynamic_batch(kind: str, onnx_matches) -> None:
    onnx_matches(
        make(kind), lambda batch: (features(batch, seed=batch), targets(batch)), ["x", "targets"]
    )


def test_target_mask_treats_minus_one_as_no_target() -> None:
    mask = target_mask(torch.tensor([2, -1, 0]), 3)
    assert mask.tolist() == [[False, False, True], [False, False, False], [True, False, False]]


def test_linear_hand_worked() -> None:
    layer = LinearClassifier(in_features=2, num_classes=2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
    logits, scores = layer(torch.tensor([[3.0, 4.0]]), torch.tensor([0]))
    assert logits.tolist() == [[11.0, -1.0]]
    assert torch.equal(logits, scores)


def test_cosface_hand_worked() -> None:
    layer = with_axes_centres(CosFaceClassifier(in_features=2, num_classes=3, scale=10, margin=0.2))
    logits, scores = layer(unit(0.6), torch.tensor([0]))  # cosines 0.6, 0.8, -0.6
    torch.testing.assert_close(logits, torch.tensor([[10 * (0.6 - 0.2), 8.0, -6.0]]))
    torch.testing.assert_close(scores, torch.tensor([[6.0, 8.0, -6.0]]))
    logits, _ = layer(unit(0.6), torch.tensor([1]))
    torch.testing.assert_close(logits, torch.tensor([[6.0, 10 * (0.8 - 0.2), -6.0]]))


def test_arcface_hand_worked() -> None:
    margin = 0.5
    layer = with_axes_centres(
        ArcFaceClassifier(in_features=2, num_classes=3, scale=10, margin=margin)
    )
    logits, scores = layer(unit(0.6), torch.tensor([0]))
    target = 10 * math.cos(math.acos(0.6) + margin)
    torch.testing.assert_close(logits, torch.tensor([[target, 8.0, -6.0]]))
    torch.testing.assert_close(scores, torch.tensor([[6.0, 8.0, -6.0]]))


def test_arcface_past_pi_minus_m_uses_the_linear_penalty() -> None:
    margin = 0.5
    layer = with_axes_centres(
        ArcFaceClassifier(in_features=2, num_classes=3, scale=1, margin=margin)
    )
    # θ = acos(-0.95) ≈ 2.82 > π − 0.5 ≈ 2.64: cos(θ + m) would rise again; use cos − (1 − cos m).
    logits, _ = layer(unit(-0.95), torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(-0.95 - (1 - math.cos(margin)), abs=1e-5)


def test_arcface_target_logit_is_continuous_and_decreasing_in_theta() -> None:
    layer = ArcFaceClassifier(in_features=2, num_classes=1, scale=1, margin=0.5)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0]]))
    thetas = torch.linspace(0.0, math.pi, 2001)
    x = torch.stack([torch.cos(thetas), torch.sin(thetas)], dim=1)
    logits, _ = layer(x, torch.zeros(len(thetas), dtype=torch.long))
    steps = logits[1:, 0] - logits[:-1, 0]
    assert (steps < 0).all()
    assert steps.abs().max() < 0.01  # no jump at θ = π − m


def test_arcface_gradients_are_finite_at_cos_plus_minus_one() -> None:
    layer = with_axes_centres(ArcFaceClassifier(in_features=2, num_classes=3, scale=30, margin=0.5))
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], requires_grad=True)
    logits, _ = layer(x, torch.tensor([0, 0]))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 0])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_circle_hand_worked() -> None:
    scale, m = 2.0, 0.25
    layer = with_axes_centres(
        CircleSoftmaxClassifier(in_features=2, num_classes=3, scale=scale, margin=m)
    )
    logits, scores = layer(unit(0.6), torch.tensor([0]))  # cosines 0.6, 0.8, -0.6
    target = max(1 + m - 0.6, 0) * (0.6 - (1 - m))
    other = max(0.8 + m, 0) * (0.8 - m)
    opposite = max(-0.6 + m, 0) * (-0.6 - m)  # α_n clamps to 0
    torch.testing.assert_close(logits, scale * torch.tensor([[target, other, opposite]]))
    torch.testing.assert_close(scores, scale * torch.tensor([[0.6, 0.8, -0.6]]))


def test_circle_without_a_target_makes_every_logit_negative() -> None:
    m = 0.25
    layer = with_axes_centres(
        CircleSoftmaxClassifier(in_features=2, num_classes=3, scale=1.0, margin=m)
    )
    logits, _ = layer(unit(0.6), torch.tensor([-1]))
    expected = [max(c + m, 0) * (c - m) for c in (0.6, 0.8, -0.6)]
    torch.testing.assert_close(logits, torch.tensor([expected]))


def test_circle_weights_are_constants_in_the_gradient() -> None:
    m = 0.25
    layer = CircleSoftmaxClassifier(in_features=2, num_classes=3, scale=1.0, margin=m)
    cos = torch.tensor([[0.6, 0.8, -0.6]], requires_grad=True)
    layer.apply_margin(cos, target_mask(torch.tensor([0]), 3)).sum().backward()
    # d/dcos of α·(cos − Δ) with α detached is α itself.
    torch.testing.assert_close(cos.grad, torch.tensor([[1 + m - 0.6, 0.8 + m, 0.0]]))


def test_cosface_and_arcface_ignore_minus_one_targets() -> None:
    for layer in (
        CosFaceClassifier(in_features=2, num_classes=3, scale=5.0, margin=0.3),
        ArcFaceClassifier(in_features=2, num_classes=3, scale=5.0, margin=0.3),
    ):
        logits, scores = with_axes_centres(layer)(unit(0.6), torch.tensor([-1]))
        torch.testing.assert_close(logits, scores)


def test_invalid_scale_or_margin_fail() -> None:
    with pytest.raises(ValueError, match="scale"):
        CosFaceClassifier(in_features=2, num_classes=3, scale=0.0, margin=0.3)
    with pytest.raises(ValueError, match="margin"):
        ArcFaceClassifier(in_features=2, num_classes=3, scale=1.0, margin=-0.1)
