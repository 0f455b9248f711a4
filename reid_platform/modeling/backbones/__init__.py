"""Backbones: (B, 3, H, W) images → (B, C, h, w) feature maps, built from `BackboneConfig`.

ResNet 18-152 and ResNeXt (IBN-a, SE, non-local, last stride, reference stem), ResNeSt via
timm, and any timm model as `timm:<name>`. Importing this package registers the built-in
backbones in `reid_platform.modeling.registry.BACKBONES`.
"""

from reid_platform.modeling.backbones.build import build_backbone
from reid_platform.modeling.backbones.ibn import IBN
from reid_platform.modeling.backbones.non_local import NonLocalBlock
from reid_platform.modeling.backbones.resnest import ResNeStBackbone
from reid_platform.modeling.backbones.resnet import ResNetBackbone
from reid_platform.modeling.backbones.se import SqueezeExcitation
from reid_platform.modeling.backbones.stages import StagedBackbone
from reid_platform.modeling.backbones.timm_bridge import TimmBackbone

__all__ = [
    "IBN",
    "NonLocalBlock",
    "ResNeStBackbone",
    "ResNetBackbone",
    "SqueezeExcitation",
    "StagedBackbone",
    "TimmBackbone",
    "build_backbone",
]
