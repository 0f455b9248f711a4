"""ResNeSt 50/101 (split-attention ResNets) built from timm's implementation.

`resnest50` is timm's `resnest50d` and `resnest101` its `resnest101e`: radix 2, deep stem
(32 / 64 wide), average-pool shortcuts and stride on an average pool after the split-attention
conv, which is the network FastReID's `build_resnest_backbone` builds for depths 50x / 101x. The
timm modules are adopted as this module's own children, so the keys are timm's (`conv1.0.weight`,
`layer1.0.conv2.fc1.weight`, ...) without the classifier: timm's `resnest50d` / `resnest101e`
weights load key for key, and so should the official `resnest50-528c19ca.pth` and FastReID's
ResNeSt layers, which use the same module names (not checked against the files: no downloads).

Only `last_stride` is an option. FastReID's ResNeSt silently ignores WITH_IBN and WITH_NL (so its
"S50" presets have no non-local blocks although they ask for them); here asking for IBN, SE,
non-local blocks or the reference stem on ResNeSt is a `ConfigError` raised by `build_backbone`.
"""

from typing import Any, cast

import timm
from torch import Tensor, nn

RESNEST_TIMM_NAMES = {"resnest50": "resnest50d", "resnest101": "resnest101e"}
"""Our backbone name → timm architecture."""


def _remove_last_stride(first_block: nn.Module) -> None:
    """Make layer4 keep its input resolution, as FastReID's ResNeSt with LAST_STRIDE=1 does.

    That network keeps a 3×3 stride-1 average pool after the split-attention conv (its first
    blocks always have one) and an identity in place of the shortcut's stride-2 pool.
    """
    first_block.avd_last = nn.AvgPool2d(kernel_size=3, stride=1, padding=1)
    shortcut = cast(nn.Sequential, first_block.get_submodule("downsample"))
    shortcut[0] = nn.Identity()


class ResNeStBackbone(nn.Module):
    """A ResNeSt body without pooling and classifier.

    x: (B, 3, H, W) → (B, 2048, H / s, W / s), s = 16 for `last_stride=1`, 32 for 2 (exact for H, W
    divisible by 32). `stem()` and `stage(s)` give the same views as `ResNetBackbone`'s (shared
    modules, execution order), for multi-branch architectures.
    """

    def __init__(self, *, timm_name: str, last_stride: int = 1) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        # zero_init_last=False: FastReID initialises bn3 at one, like every other BN.
        net = timm.create_model(
            timm_name, pretrained=False, num_classes=0, global_pool="", zero_init_last=False
        )
        self.conv1 = net.get_submodule("conv1")
        self.bn1 = net.get_submodule("bn1")
        self.act1 = net.get_submodule("act1")
        self.maxpool = net.get_submodule("maxpool")
        self.layer1 = cast(nn.Sequential, net.get_submodule("layer1"))
        self.layer2 = cast(nn.Sequential, net.get_submodule("layer2"))
        self.layer3 = cast(nn.Sequential, net.get_submodule("layer3"))
        self.layer4 = cast(nn.Sequential, net.get_submodule("layer4"))
        if last_stride == 1:
            _remove_last_stride(self.layer4[0])
        self.stage_channels: tuple[int, ...] = tuple(
            int(info["num_chs"]) for info in cast(Any, net).feature_info[1:]
        )
        self.out_channels: int = self.stage_channels[-1]

    def stem(self) -> nn.Sequential:
        """Deep-stem conv1, bn1, act1, maxpool as a view sharing this backbone's modules."""
        return nn.Sequential(self.conv1, self.bn1, self.act1, self.maxpool)

    def stage(self, index: int) -> nn.Sequential:
        """layer{index} (1-4), the backbone's own module."""
        if index not in (1, 2, 3, 4):
            raise ValueError(f"stage index must be 1-4, got {index}")
        layer: nn.Sequential = getattr(self, f"layer{index}")
        return layer

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resnest50(*, last_stride: int = 1) -> ResNeStBackbone:
    """ResNeSt-50 body (timm `resnest50d`, 2048 output channels)."""
    return ResNeStBackbone(timm_name=RESNEST_TIMM_NAMES["resnest50"], last_stride=last_stride)


def resnest101(*, last_stride: int = 1) -> ResNeStBackbone:
    """ResNeSt-101 body (timm `resnest101e`, 2048 output channels)."""
    return ResNeStBackbone(timm_name=RESNEST_TIMM_NAMES["resnest101"], last_stride=last_stride)
