"""IBN, squeeze-excitation and non-local blocks against naive re-computations."""

import pytest
import torch
from torch import nn
from torch.nn import functional

from reid_platform.modeling.backbones import IBN, NonLocalBlock, SqueezeExcitation


@pytest.mark.parametrize("channels", [6, 5])
def test_ibn_normalises_the_halves_separately(channels: int) -> None:
    torch.manual_seed(0)
    layer = IBN(channels).train()
    nn.init.normal_(layer.IN.weight)
    nn.init.normal_(layer.BN.bias)
    x = torch.randn(4, channels, 3, 5)
    half = channels // 2
    expected = torch.cat(
        (
            functional.instance_norm(x[:, :half], weight=layer.IN.weight, bias=layer.IN.bias),
            functional.batch_norm(
                x[:, half:], None, None, layer.BN.weight, layer.BN.bias, training=True
            ),
        ),
        dim=1,
    )
    torch.testing.assert_close(layer(x), expected)
    assert (layer.IN.num_features, layer.BN.num_features) == (half, channels - half)
    assert sum(p.numel() for p in layer.parameters()) == 2 * channels  # same as BN(channels)


def test_squeeze_excitation_gates_each_channel() -> None:
    torch.manual_seed(0)
    layer = SqueezeExcitation(32)
    x = torch.randn(2, 32, 4, 3)
    squeezed = x.mean(dim=(2, 3))
    hidden = torch.relu(squeezed @ layer.fc[0].weight.T)
    gate = torch.sigmoid(hidden @ layer.fc[2].weight.T)
    torch.testing.assert_close(layer(x), x * gate[:, :, None, None])
    assert set(layer.state_dict()) == {"fc.0.weight", "fc.2.weight"}
    assert layer.fc[0].weight.shape == (2, 32)


def _naive_non_local(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """Explicit loops over positions: y_i = (1/N) Σ_j <θ_i, φ_j> g_j, z = x + W(y)."""
    batch, _, height, width = x.shape
    theta, phi, g = (conv(x).flatten(2) for conv in (block.theta, block.phi, block.g))
    positions = height * width
    y = torch.zeros_like(g)
    for b in range(batch):
        for i in range(positions):
            for j in range(positions):
                y[b, :, i] += torch.dot(theta[b, :, i], phi[b, :, j]) * g[b, :, j] / positions
    y = y.reshape(batch, block.inner_channels, height, width)
    return x + block.W(y)


@pytest.mark.parametrize(
    ("inner_channels", "size"),
    [(1, (3, 2)), (8, (2, 2))],  # N = 6 > I = 1 (associative order); N = 4 ≤ I = 8 (N×N map)
)
def test_non_local_matches_the_naive_definition(inner_channels: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(16, inner_channels=inner_channels).eval()
    nn.init.normal_(block.W[1].weight)
    nn.init.normal_(block.W[1].running_mean)
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _naive_non_local(block, x))


def test_non_local_starts_as_identity_and_still_learns() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(8).train()
    assert block.inner_channels == 4  # C // 2 by default
    x = torch.randn(2, 8, 4, 3, requires_grad=True)
    out = block(x)
    torch.testing.assert_close(out, x)
    (out * torch.randn_like(out)).sum().backward()
    assert block.W[1].weight.grad is not None and block.W[1].weight.grad.abs().sum() > 0
    for name, parameter in block.named_parameters():
        assert parameter.grad is not None, name
