"""Every registered backbone (and a few option combinations) on a tiny CPU input.

Output shape from hand stride arithmetic, finite values, a gradient for every trainable
parameter, deterministic eval forwards, and the registry / config name lists in step.
"""

import pytest
import torch

from reid_platform.config.model import BUILTIN_BACKBONES, BackboneConfig
from reid_platform.modeling.backbones import build_backbone
from reid_platform.modeling.registry import BACKBONES

HEIGHT, WIDTH = 64, 32

# Output channels by hand: BasicBlock ResNets end at 512, Bottleneck ones at 4 · 512; the timm
# figures are those models' last-stage widths (MobileNetV3-L 960, RegNetY-400MF 440, ViT-Ti 192).
CHANNELS = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "resnet152": 2048,
    "resnext50_32x4d": 2048,
    "resnext101_32x4d": 2048,
    "resnest50": 2048,
    "resnest101": 2048,
    "timm:mobilenetv3_large_100": 960,
    "timm:regnety_004": 440,
    "timm:vit_tiny_patch16_224": 192,
}

CASES = [
    *(BackboneConfig(name=name) for name in BUILTIN_BACKBONES),
    BackboneConfig(name="resnet18", ibn=True, se=True, last_stride=2, reference_stem=True),
    BackboneConfig(name="resnet50", ibn=True, non_local=True, non_local_inner_channels=1),
    BackboneConfig(name="resnet50", se=True, non_local=True, last_stride=2),
    BackboneConfig(name="resnext50_32x4d", ibn=True, non_local=True, reference_stem=True),
    BackboneConfig(name="resnest50", last_stride=2),
    BackboneConfig(name="timm:mobilenetv3_large_100"),  # last stride 1: output stride 16
    BackboneConfig(name="timm:regnety_004", last_stride=2),
    BackboneConfig(name="timm:vit_tiny_patch16_224", last_stride=2),  # 16×16 patches
]


def _case_id(config: BackboneConfig) -> str:
    flags = [f for f in ("ibn", "se", "non_local", "reference_stem") if getattr(config, f)]
    return "-".join([config.name, *flags, f"ls{config.last_stride}"])


def _output_stride(config: BackboneConfig) -> int:
    if "vit_" in config.name:
        return 16  # patch size
    # conv1 /2, max-pool /2, layer2 /2, layer3 /2, layer4 /last_stride (or timm's equivalent).
    return 2 * 2 * 2 * 2 * config.last_stride


def test_registry_holds_exactly_the_config_names() -> None:
    assert set(BACKBONES.names()) == set(BUILTIN_BACKBONES)


@pytest.mark.parametrize("config", CASES, ids=_case_id)
def test_backbone_contract(config: BackboneConfig) -> None:
    torch.manual_seed(0)
    backbone = build_backbone(config)
    images = torch.randn(2, 3, HEIGHT, WIDTH)
    stride = _output_stride(config)

    backbone.train()
    features = backbone(images)
    assert features.shape == (2, CHANNELS[config.name], HEIGHT // stride, WIDTH // stride)
    assert backbone.out_channels == CHANNELS[config.name]
    assert torch.isfinite(features).all()

    (features * torch.randn_like(features)).sum().backward()
    without_grad = [
        name
        for name, parameter in backbone.named_parameters()
        if parameter.requires_grad and parameter.grad is None
    ]
    assert not without_grad, f"no gradient reached {without_grad[:5]}"
    for name, parameter in backbone.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name

    backbone.eval()
    with torch.no_grad():
        assert torch.equal(backbone(images), backbone(images))
