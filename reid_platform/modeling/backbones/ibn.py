"""IBN-a normalisation: instance norm on half of the channels, batch norm on the rest (IBN-Net)."""

import torch
from torch import Tensor, nn


class IBN(nn.Module):
    """Instance-batch normalisation of IBN-Net-a, used as the `bn1` of residual blocks.

    The first `channels // 2` channels go through an affine `InstanceNorm2d` (no running
    statistics), the remaining ones through `BatchNorm2d`. The submodules are named `IN` and `BN`
    as in IBN-Net and FastReID, so their released weights load key for key
    (`layer1.0.bn1.IN.weight`, `layer1.0.bn1.BN.running_mean`, ...). It has as many parameters as
    the `BatchNorm2d(channels)` it replaces.

    x: (B, C, H, W) → (B, C, H, W), with H·W > 1 in training (instance statistics).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"IBN needs at least 2 channels, got {channels}")
        self.instance_channels = channels // 2
        self.batch_channels = channels - self.instance_channels
        self.IN = nn.InstanceNorm2d(self.instance_channels, affine=True)
        self.BN = nn.BatchNorm2d(self.batch_channels)

    def forward(self, x: Tensor) -> Tensor:
        instance_part, batch_part = torch.split(
            x, [self.instance_channels, self.batch_channels], dim=1
        )
        return torch.cat((self.IN(instance_part), self.BN(batch_part)), dim=1)
