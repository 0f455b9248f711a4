"""ResNeXt 50/101 (32×4d): the ResNet body with grouped 3×3 convolutions.

Same code, options and key layout as `resnet.py` (`groups=32`, `width_per_group=4`, so layer1's
blocks are 128 wide). Weights: torchvision's `resnext50_32x4d-*.pth` and IBN-Net's
`resnext101_ibn_a-*.pth` load key for key.

Differences from FastReID's `build_resnext_backbone`, on purpose:
- IBN-a stays out of layer4, as in IBN-Net (whose `resnext101_ibn_a` weights FastReID loads):
  FastReID's ResNeXt puts IBN in layer4 too, so its layer4 `bn1` keys do not match those
  weights. A FastReID-trained ResNeXt-IBN checkpoint therefore differs from ours in
  `layer4.*.bn1` (plain BN here, `IN`/`BN` there).
- Non-local placement is FastReID's ResNeXt one, `(0, 2, 3, 0)` for both depths (its ResNet-101
  uses `(0, 2, 9, 0)`), so FastReID ResNeXt-NL checkpoints keep their `NL_3.{0,1,2}` keys.
- The stem max-pool is torchvision's unless `reference_stem` (FastReID's ResNeXt uses the same
  padded max-pool as torchvision; the option is honoured for symmetry with ResNet).
"""

from functools import partial

from reid_platform.modeling.backbones.resnet import BLOCKS_PER_STAGE, Bottleneck, ResNetBackbone

RESNEXT_NON_LOCAL_PER_STAGE = (0, 2, 3, 0)
"""FastReID's non-local placement for ResNeXt 50 and 101."""


def resnext(
    depth: int,
    *,
    last_stride: int = 1,
    ibn: bool = False,
    se: bool = False,
    non_local: bool = False,
    non_local_inner_channels: int | None = None,
    reference_stem: bool = False,
) -> ResNetBackbone:
    """The ResNeXt 32×4d body of `depth` (50/101) with the given options."""
    return ResNetBackbone(
        block=Bottleneck,
        blocks_per_stage=BLOCKS_PER_STAGE[depth],
        groups=32,
        width_per_group=4,
        last_stride=last_stride,
        ibn=ibn,
        se=se,
        non_local_per_stage=RESNEXT_NON_LOCAL_PER_STAGE if non_local else (0, 0, 0, 0),
        non_local_inner_channels=non_local_inner_channels,
        reference_stem=reference_stem,
    )


resnext50_32x4d = partial(resnext, 50)
"""ResNeXt-50 32×4d body (2048 output channels)."""
resnext101_32x4d = partial(resnext, 101)
"""ResNeXt-101 32×4d body (2048 output channels)."""
