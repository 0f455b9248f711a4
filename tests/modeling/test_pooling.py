"""Every pooling: shapes, finite values, gradients, determinism, ONNX; hand-worked cases."""

import math

import pytest
import torch
from torch import Tensor, nn

from reid_platform.modeling.pooling import (
    AttentionPooling,
    AverageMaxPooling,
    AveragePooling,
    ClippedAveragePooling,
    GeMPooling,
    MaxPooling,
)
from reid_platform.modeling.registry import POOLINGS

CHANNELS = 6

VARIANTS: dict[str, dict[str, object]] = {
    "avg": {},
    "max": {},
    "gem": {"p": 3.0, "learnable": False},
    "gem_learnable": {"p": 3.0, "learnable": True},
    "attention": {},
    "avg_max": {},
    "clipped_avg": {"max_value": 0.7},
}


def make(variant: str) -> nn.Module:
    torch.manual_seed(0)
    kind = "gem" if variant.startswith("gem") else variant
    pooling = POOLINGS.get(kind)(channels=CHANNELS, **VARIANTS[variant])
    if isinstance(pooling, AttentionPooling):
        nn.init.normal_(pooling.score.weight, std=0.5)  # away from the uniform start
    return pooling


def feature_map(batch: int, seed: int = 1) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    # Mostly positive like post-ReLU maps, some negatives to exercise GeM's clamp.
    return torch.rand(batch, CHANNELS, 5, 3, generator=generator) * 1.2 - 0.1


def test_every_registered_pooling_is_covered() -> None:
    kinds = {variant.removesuffix("_learnable") for variant in VARIANTS}
    assert kinds == set(POOLINGS.names())


@pytest.mark.parametrize("variant", VARIANTS)
def test_shape_finite_and_deterministic(variant: str) -> None:
    pooling = make(variant).eval()
    x = feature_map(4)
    out = pooling(x)
    assert out.shape == (4, CHANNELS)
    assert torch.isfinite(out).all()
    assert torch.equal(out, pooling(x))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_input_and_parameters(variant: str) -> None:
    pooling = make(variant).train()
    x = feature_map(4).requires_grad_(True)
    out = pooling(x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, parameter in pooling.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_input_not_modified_and_channels_last(variant: str) -> None:
    pooling = make(variant).eval()
    x = feature_map(3)
    before = x.clone()
    out = pooling(x)
    assert torch.equal(x, before)
    out_cl = pooling(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, out)


@pytest.mark.parametrize("variant", VARIANTS)
def test_onnx_export_dynamic_batch(variant: str, onnx_matches) -> None:
    onnx_matches(make(variant), lambda batch: (feature_map(batch, seed=batch),), ["feature_map"])


def test_learnable_gem_p_is_in_state_dict_and_fixed_is_not() -> None:
    learnable = GeMPooling(channels=CHANNELS, p=3.0, learnable=True)
    assert list(learnable.state_dict()) == ["p"]
    assert learnable.state_dict()["p"].shape == (1,)
    assert list(GeMPooling(channels=CHANNELS, p=3.0).state_dict()) == []


def test_gem_hand_worked() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    expected = ((1 + 8 + 27 + 64) / 4) ** (1 / 3)
    assert GeMPooling(channels=1, p=3.0)(x).item() == pytest.approx(expected, rel=1e-6)


def test_gem_p1_is_average_pooling() -> None:
    x = torch.rand(3, CHANNELS, 5, 3) + 0.01
    torch.testing.assert_close(
        GeMPooling(channels=CHANNELS, p=1.0)(x), AveragePooling(channels=CHANNELS)(x)
    )


@pytest.mark.parametrize("p", [50.0, 200.0])
def test_gem_large_p_approaches_max_pooling(p: float) -> None:
    x = torch.rand(3, CHANNELS, 4, 4) * 0.9 + 0.1
    gem = GeMPooling(channels=CHANNELS, p=p)(x)
    largest = MaxPooling(channels=CHANNELS)(x)
    # mean(x^p)^(1/p) lies between max·(1/n)^(1/p) and max, n the number of positions.
    assert (gem <= largest * (1 + 1e-5)).all()
    assert (gem >= largest * (1 / 16) ** (1 / p) * (1 - 1e-5)).all()


def test_gem_clamps_negative_activations_to_eps() -> None:
    x = torch.full((1, 1, 2, 2), -5.0)
    assert GeMPooling(channels=1, p=3.0, eps=1e-6)(x).item() == pytest.approx(1e-6, rel=1e-4)


def test_attention_hand_worked() -> None:
    pooling = AttentionPooling(channels=2)
    with torch.no_grad():
        pooling.score.weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    # Two positions: (1, 10) and (0, 20); the scores are channel 0: 1 and 0.
    x = torch.tensor([[1.0, 0.0], [10.0, 20.0]]).view(1, 2, 1, 2)
    w1 = math.exp(1) / (math.exp(1) + 1)
    w2 = 1 - w1
    expected = torch.tensor([[w1 * 1 + w2 * 0, w1 * 10 + w2 * 20]])
    torch.testing.assert_close(pooling(x), expected)


def test_fresh_attention_is_average_pooling() -> None:
    x = torch.randn(2, CHANNELS, 5, 3)
    torch.testing.assert_close(
        AttentionPooling(channels=CHANNELS)(x), AveragePooling(channels=CHANNELS)(x)
    )


def test_attention_weights_follow_the_scores() -> None:
    pooling = AttentionPooling(channels=1)
    with torch.no_grad():
        pooling.score.weight.fill_(50.0)  # sharp: nearly all weight on the largest activation
    x = torch.tensor([0.1, 0.9, 0.3, 0.2]).view(1, 1, 2, 2)
    assert pooling(x).item() == pytest.approx(0.9, abs=1e-6)


def test_avg_max_is_the_sum() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 6.0]).view(1, 1, 2, 2)
    assert AverageMaxPooling(channels=1)(x).item() == pytest.approx(3.0 + 6.0)


def test_max_hand_worked() -> None:
    x = torch.tensor([1.0, -2.0, 7.0, 6.0]).view(1, 1, 2, 2)
    assert MaxPooling(channels=1)(x).item() == 7.0


def test_clipped_average_clamps_the_mean_not_the_activations() -> None:
    # Mean 0.5 although one activation exceeds the bound: the reference clamps after averaging.
    x = torch.tensor([[2.0, -1.0, 0.5, 0.5], [3.0, 3.0, 3.0, 3.0], [-1.0, -1.0, 0.0, 0.0]])
    out = ClippedAveragePooling(channels=3, max_value=1.0)(x.view(1, 3, 2, 2))
    torch.testing.assert_close(out, torch.tensor([[0.5, 1.0, 0.0]]))


def test_invalid_arguments_fail() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GeMPooling(channels=1, p=0.5)
    with pytest.raises(ValueError, match="positive"):
        ClippedAveragePooling(channels=1, max_value=0.0)
