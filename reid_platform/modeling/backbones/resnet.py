"""ResNet 18/34/50/101/152 for re-id, with FastReID's options and state-dict layout.

The blocks are torchvision's `BasicBlock` / `Bottleneck` (stride on the 3×3 conv, "v1.5") with
two additions: IBN-a in `bn1` and an optional squeeze-and-excitation `se` applied to the residual
branch before the addition. Module names follow torchvision and FastReID, so torchvision and
IBN-Net ImageNet weights and FastReID backbone weights map key for key:

    conv1, bn1, relu, maxpool                   stem
    layer{1..4}.{i}.conv{1,2,3} / bn{1,2,3}     blocks (bn1 is `IBN` with `.IN` / `.BN` when ibn)
    layer{1..4}.0.downsample.{0,1}              projection shortcut (1×1 conv, BN)
    layer{1..4}.{i}.se.fc.{0,2}                 SE gates (when se)
    NL_{1..4}.{k}.{g,theta,phi,W.0,W.1}         non-local blocks (when non_local)

`NL_s_idx` (plain tuples, not saved) lists after which block of `layer{s}` each `NL_s.{k}` runs:
the last blocks of the stage, as in FastReID.

Stages for multi-branch heads (MGN): `stem()` and `stage(s)` return `nn.Sequential` views that
share this backbone's modules (no copies), in execution order; `stage(s)` interleaves the
non-local blocks after the blocks they follow. FastReID's MGN body is
`nn.Sequential(*backbone.stem(), backbone.stage(1), backbone.stage(2), backbone.stage(3)[0])`
(indices 0-3 stem, 4 layer1, 5 layer2, 6 layer3.0) with branches built from deep copies of
`backbone.stage(3)[1:]` and `backbone.stage(4)`.
"""

from functools import partial

from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from reid_platform.errors import ConfigError
from reid_platform.modeling.backbones.ibn import IBN
from reid_platform.modeling.backbones.non_local import NonLocalBlock
from reid_platform.modeling.backbones.se import SqueezeExcitation

StageCounts = tuple[int, int, int, int]

BLOCKS_PER_STAGE: dict[int, StageCounts] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
"""Residual blocks in layer1..layer4 for each depth."""

NON_LOCAL_PER_STAGE: dict[int, StageCounts] = {
    50: (0, 2, 3, 0),
    101: (0, 2, 9, 0),
    # FastReID defines no ResNet-152 placement; ours keeps two in layer2 and a third of layer3.
    152: (0, 2, 12, 0),
}
"""Non-local blocks after the last blocks of each stage (FastReID's placement for 50/101)."""


class BasicBlock(tv_resnet.BasicBlock):
    """torchvision's two 3×3-conv block with optional IBN-a in `bn1` and SE before the sum.

    x: (B, inplanes, H, W) → (B, planes, H / stride, W / stride).
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        ibn: bool = False,
        se: bool = False,
    ) -> None:
        super().__init__(inplanes, planes, stride, downsample, groups, base_width)
        if ibn:
            self.bn1 = IBN(planes)
        self.se = SqueezeExcitation(planes) if se else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(tv_resnet.Bottleneck):
    """torchvision's 1×1-3×3-1×1 block (grouped for ResNeXt), optional IBN-a in `bn1` and SE.

    x: (B, inplanes, H, W) → (B, 4·planes, H / stride, W / stride).
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        ibn: bool = False,
        se: bool = False,
    ) -> None:
        super().__init__(inplanes, planes, stride, downsample, groups, base_width)
        width = int(planes * (base_width / 64.0)) * groups
        if ibn:
            self.bn1 = IBN(width)
        self.se = SqueezeExcitation(planes * self.expansion) if se else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


ResidualBlock = type[BasicBlock] | type[Bottleneck]


def _run_stage(
    x: Tensor, blocks: nn.Sequential, non_local: nn.ModuleList, after: tuple[int, ...]
) -> Tensor:
    for index, block in enumerate(blocks):
        x = block(x)
        if index in after:
            x = non_local[after.index(index)](x)
    return x


class ResNetBackbone(nn.Module):
    """A ResNet / ResNeXt body without pooling and classifier.

    x: (B, 3, H, W) → (B, out_channels, H / s, W / s) with s = 16 for `last_stride=1` and 32 for
    `last_stride=2` (exact for H, W divisible by 32). IBN-a is applied to `bn1` of every block of
    layer1-3 (never layer4, as in IBN-Net); `reference_stem` uses FastReID's max-pool
    (`kernel 3, stride 2, padding 0, ceil_mode=True`) instead of torchvision's (`padding 1`).
    """

    def __init__(
        self,
        *,
        block: ResidualBlock,
        blocks_per_stage: StageCounts,
        groups: int = 1,
        width_per_group: int = 64,
        last_stride: int = 1,
        ibn: bool = False,
        se: bool = False,
        non_local_per_stage: StageCounts = (0, 0, 0, 0),
        non_local_inner_channels: int | None = None,
        reference_stem: bool = False,
    ) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        if reference_stem:
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
        else:
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        inplanes = 64
        layers: list[nn.Sequential] = []
        for stage, (count, stride) in enumerate(
            zip(blocks_per_stage, (1, 2, 2, last_stride), strict=True)
        ):
            planes = 64 * 2**stage
            out = planes * block.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                downsample = nn.Sequential(
                    tv_resnet.conv1x1(inplanes, out, stride), nn.BatchNorm2d(out)
                )
            blocks = [
                block(
                    inplanes if index == 0 else out,
                    planes,
                    stride if index == 0 else 1,
                    downsample if index == 0 else None,
                    groups=groups,
                    base_width=width_per_group,
                    ibn=ibn and stage < 3,  # IBN-a leaves layer4 alone
                    se=se,
                )
                for index in range(count)
            ]
            layers.append(nn.Sequential(*blocks))
            inplanes = out
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.stage_channels: tuple[int, ...] = tuple(64 * 2**s * block.expansion for s in range(4))
        self.out_channels: int = self.stage_channels[-1]
        self._init_weights()

        # Built after the generic init, like FastReID: PyTorch's default conv init, zero W.1.
        non_local_lists = []
        for stage, (count, blocks_in_stage) in enumerate(
            zip(non_local_per_stage, blocks_per_stage, strict=True)
        ):
            if count > blocks_in_stage:
                raise ValueError(
                    f"{count} non-local blocks requested in a {blocks_in_stage}-block stage"
                )
            channels = self.stage_channels[stage]
            non_local_lists.append(
                nn.ModuleList(
                    NonLocalBlock(channels, inner_channels=non_local_inner_channels)
                    for _ in range(count)
                )
            )
        self.NL_1, self.NL_2, self.NL_3, self.NL_4 = non_local_lists
        positions = [
            tuple(range(blocks_in_stage - count, blocks_in_stage))
            for count, blocks_in_stage in zip(non_local_per_stage, blocks_per_stage, strict=True)
        ]
        self.NL_1_idx, self.NL_2_idx, self.NL_3_idx, self.NL_4_idx = positions

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d | nn.InstanceNorm2d) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def stem(self) -> nn.Sequential:
        """conv1, bn1, relu, maxpool as a view sharing this backbone's modules."""
        return nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)

    def stage(self, index: int) -> nn.Sequential:
        """layer{index} (1-4) with its non-local blocks interleaved, sharing the modules."""
        if index not in (1, 2, 3, 4):
            raise ValueError(f"stage index must be 1-4, got {index}")
        blocks: nn.Sequential = getattr(self, f"layer{index}")
        non_local: nn.ModuleList = getattr(self, f"NL_{index}")
        after: tuple[int, ...] = getattr(self, f"NL_{index}_idx")
        modules: list[nn.Module] = []
        for position, block in enumerate(blocks):
            modules.append(block)
            if position in after:
                modules.append(non_local[after.index(position)])
        return nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = _run_stage(x, self.layer1, self.NL_1, self.NL_1_idx)
        x = _run_stage(x, self.layer2, self.NL_2, self.NL_2_idx)
        x = _run_stage(x, self.layer3, self.NL_3, self.NL_3_idx)
        return _run_stage(x, self.layer4, self.NL_4, self.NL_4_idx)


def resnet(
    depth: int,
    *,
    last_stride: int = 1,
    ibn: bool = False,
    se: bool = False,
    non_local: bool = False,
    non_local_inner_channels: int | None = None,
    reference_stem: bool = False,
) -> ResNetBackbone:
    """The ResNet body of `depth` (18/34/50/101/152) with the given options."""
    if non_local and depth not in NON_LOCAL_PER_STAGE:
        raise ConfigError(
            f"resnet{depth} has no non-local placement (only resnet50/101/152 and ResNeXt have "
            "one, as in FastReID); set model.backbone.non_local to false or pick a deeper ResNet"
        )
    return ResNetBackbone(
        block=BasicBlock if depth < 50 else Bottleneck,
        blocks_per_stage=BLOCKS_PER_STAGE[depth],
        last_stride=last_stride,
        ibn=ibn,
        se=se,
        non_local_per_stage=NON_LOCAL_PER_STAGE[depth] if non_local else (0, 0, 0, 0),
        non_local_inner_channels=non_local_inner_channels,
        reference_stem=reference_stem,
    )


# One factory per config name; `build.py` reads each factory's keyword parameters as the options
# that backbone honours.
resnet18 = partial(resnet, 18)
"""ResNet-18 body (BasicBlock, 512 output channels); no non-local placement exists."""
resnet34 = partial(resnet, 34)
"""ResNet-34 body (BasicBlock, 512 output channels); no non-local placement exists."""
resnet50 = partial(resnet, 50)
"""ResNet-50 body (Bottleneck, 2048 output channels); non-local after layer2.2-3, layer3.3-5."""
resnet101 = partial(resnet, 101)
"""ResNet-101 body (2048 output channels); non-local after layer2.2-3 and layer3.14-22."""
resnet152 = partial(resnet, 152)
"""ResNet-152 body (2048 output channels); non-local after layer2.6-7 and layer3.24-35."""
