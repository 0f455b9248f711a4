"""Every neck: shapes, finite values, gradients (BNNeck bias frozen), determinism, ONNX."""

import pytest
import torch
from torch import Tensor, nn

from reid_platform.modeling.necks import BNNeck, IdentityNeck, LinearNeck, ReductionNeck
from reid_platform.modeling.registry import NECKS

IN_FEATURES = 12

VARIANTS: dict[str, tuple[str, dict[str, object], int]] = {
    "bn": ("bn", {}, IN_FEATURES),
    "bn_projected": ("bn", {"out_features": 5}, 5),
    "linear": ("linear", {"out_features": 7, "dropout": 0.2}, 7),
    "reduction": ("reduction", {"out_features": 6, "dropout": 0.1}, 6),
    "none": ("none", {}, IN_FEATURES),
}


def make(variant: str) -> nn.Module:
    torch.manual_seed(0)
    kind, options, _ = VARIANTS[variant]
    return NECKS.get(kind)(in_features=IN_FEATURES, **options)


def features(batch: int, seed: int = 1) -> Tensor:
    return torch.randn(batch, IN_FEATURES, generator=torch.Generator().manual_seed(seed)) + 0.5


def trained_statistics(neck: nn.Module) -> nn.Module:
    """A few training passes so BN running statistics are not the identity init."""
    neck.train()
    with torch.no_grad():
        for seed in range(3):
            neck(features(8, seed=100 + seed) * 2.0)
    return neck.eval()


def test_every_registered_neck_is_covered() -> None:
    assert {kind for kind, _, _ in VARIANTS.values()} == set(NECKS.names())


@pytest.mark.parametrize("variant", VARIANTS)
def test_shape_finite_out_features_and_deterministic(variant: str) -> None:
    neck = trained_statistics(make(variant))
    x = features(4)
    out = neck(x)
    expected_dim = VARIANTS[variant][2]
    assert neck.out_features == expected_dim
    assert out.shape == (4, expected_dim)
    assert torch.isfinite(out).all()
    assert torch.equal(out, neck(x))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_trainable_parameter(variant: str) -> None:
    neck = make(variant).train()
    x = features(6).requires_grad_(True)
    out = neck(x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, parameter in neck.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_input_not_modified(variant: str) -> None:
    neck = make(variant).train()
    x = features(4)
    before = x.clone()
    neck(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("variant", VARIANTS)
def test_onnx_export_dynamic_batch(variant: str, onnx_matches) -> None:
    onnx_matches(
        trained_statistics(make(variant)), lambda batch: (features(batch, seed=batch),), ["x"]
    )


@pytest.mark.parametrize("out_features", [None, 5])
def test_bnneck_bias_is_frozen_at_zero_and_weight_starts_at_one(out_features: int | None) -> None:
    neck = BNNeck(in_features=IN_FEATURES, out_features=out_features)
    assert not neck.bn.bias.requires_grad
    assert torch.equal(neck.bn.bias, torch.zeros_like(neck.bn.bias))
    assert torch.equal(neck.bn.weight, torch.ones_like(neck.bn.weight))
    optimizer = torch.optim.SGD([p for p in neck.parameters() if p.requires_grad], lr=1.0)
    out = neck(features(6))
    (out * torch.randn_like(out)).sum().backward()
    optimizer.step()
    assert neck.bn.bias.grad is None
    assert torch.equal(neck.bn.bias, torch.zeros_like(neck.bn.bias))


def test_bnneck_in_training_whitens_each_feature() -> None:
    neck = BNNeck(in_features=IN_FEATURES).train()
    out = neck(features(64) * 3.0 + 1.0)
    torch.testing.assert_close(out.mean(0), torch.zeros(IN_FEATURES), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out.var(0, unbiased=False), torch.ones(IN_FEATURES), atol=1e-3, rtol=0
    )


def test_reduction_output_is_non_negative_and_identity_is_unchanged() -> None:
    x = features(5)
    assert (ReductionNeck(in_features=IN_FEATURES, out_features=4).train()(x) >= 0).all()
    assert IdentityNeck(in_features=IN_FEATURES)(x) is x


def test_linear_neck_is_affine_in_eval() -> None:
    neck = LinearNeck(in_features=IN_FEATURES, out_features=3, dropout=0.5).eval()
    x = features(4)
    torch.testing.assert_close(neck(x), x @ neck.linear.weight.T + neck.linear.bias)
