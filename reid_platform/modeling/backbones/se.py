"""Squeeze-and-excitation channel attention (Hu et al., 2018), laid out as in FastReID."""

from torch import Tensor, nn


class SqueezeExcitation(nn.Module):
    """Rescales each channel by a gate computed from the globally pooled feature map.

    `fc` is `Sequential(Linear(C, C // reduction, bias=False), ReLU, Linear(C // reduction, C,
    bias=False), Sigmoid)`, so the keys are `fc.0.weight` and `fc.2.weight` like FastReID's
    `SELayer`.

    x: (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))  # (B, C)
        return x * gate[:, :, None, None]
