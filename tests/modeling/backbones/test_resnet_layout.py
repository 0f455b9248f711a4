"""ResNet-family layout: published parameter counts, FastReID / torchvision / IBN-Net key names,
non-local placement, the reference stem and the stage views MGN splits.

Parameter counts and key lists use meta-device models (no memory, no init), so the deep
variants cost milliseconds.
"""

import pytest
import timm
import torch
from torch import nn
from torchvision import models as tv_models

from reid_platform.config.model import BackboneConfig
from reid_platform.errors import ConfigError
from reid_platform.modeling.backbones import StagedBackbone, build_backbone
from reid_platform.modeling.backbones.resnet import ResNetBackbone, resnet18, resnet50
from reid_platform.modeling.backbones.resnext import resnext101_32x4d

FC_1000_FROM_2048 = 2048 * 1000 + 1000
FC_1000_FROM_512 = 512 * 1000 + 1000

# torchvision's published totals (its model docs), minus the 1000-way ImageNet classifier.
PUBLISHED_BODY_PARAMETERS = {
    "resnet18": 11_689_512 - FC_1000_FROM_512,
    "resnet34": 21_797_672 - FC_1000_FROM_512,
    "resnet50": 25_557_032 - FC_1000_FROM_2048,  # 23,508,032
    "resnet101": 44_549_160 - FC_1000_FROM_2048,
    "resnet152": 60_192_808 - FC_1000_FROM_2048,
    "resnext50_32x4d": 25_028_904 - FC_1000_FROM_2048,
}

# FastReID (reference notes §4.2), Market-1501: 751 classes, BNNeck weight + bias on 2048.
BOT_R50_IBN_TOTAL, BOT_R50_IBN_KEYS = 25_050_176, 350
SBS_R50_IBN_TOTAL, SBS_R50_IBN_KEYS = 25_078_864, 416
HEAD_PARAMETERS = 751 * 2048 + 2 * 2048
HEAD_KEYS = 1 + 5  # heads.weight + heads.bottleneck.0.{weight,bias,running_*,num_batches}


def _meta(config: BackboneConfig) -> nn.Module:
    with torch.device("meta"):
        return build_backbone(config)


def _count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_BODY_PARAMETERS))
def test_body_parameters_match_published_counts(name: str) -> None:
    assert _count(_meta(BackboneConfig(name=name))) == PUBLISHED_BODY_PARAMETERS[name]


def test_ibn_keeps_the_parameter_count() -> None:
    # IN(c // 2, affine) + BN(c - c // 2) holds 2·(c // 2) + 2·(c - c // 2) = 2c, like BN(c).
    plain = _count(_meta(BackboneConfig(name="resnet50")))
    ibn = _meta(BackboneConfig(name="resnet50", ibn=True))
    assert _count(ibn) == plain == BOT_R50_IBN_TOTAL - HEAD_PARAMETERS
    assert len(ibn.state_dict()) == BOT_R50_IBN_KEYS - HEAD_KEYS  # 344


def test_sbs_r50_ibn_backbone_matches_the_reference() -> None:
    backbone = _meta(
        BackboneConfig(name="resnet50", ibn=True, non_local=True, non_local_inner_channels=1)
    )
    # One non-local block of width C with 1 inner channel: g, theta, phi 3·(C + 1), W.0 C + C,
    # W.1 2C, so 7C + 3; two at C = 512 and three at C = 1024.
    non_local = 2 * (7 * 512 + 3) + 3 * (7 * 1024 + 3)
    assert _count(backbone) == PUBLISHED_BODY_PARAMETERS["resnet50"] + non_local
    assert _count(backbone) == SBS_R50_IBN_TOTAL - HEAD_PARAMETERS - 1  # minus GeM's p
    assert len(backbone.state_dict()) == SBS_R50_IBN_KEYS - HEAD_KEYS - 1  # 409


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d"])
def test_keys_and_shapes_equal_torchvision_without_fc(name: str) -> None:
    with torch.device("meta"):
        reference = getattr(tv_models, name)().state_dict()
    ours = _meta(BackboneConfig(name=name)).state_dict()
    expected = {k: v.shape for k, v in reference.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.items()} == expected


def test_resnext101_keys_and_shapes_equal_timm_without_fc() -> None:
    with torch.device("meta"):
        reference = timm.create_model("resnext101_32x4d", num_classes=0).state_dict()
        ours = resnext101_32x4d().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


def test_ibn_and_non_local_key_names_follow_fastreid() -> None:
    state = _meta(
        BackboneConfig(name="resnet50", ibn=True, non_local=True, non_local_inner_channels=1)
    ).state_dict()
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    assert shapes["layer1.0.bn1.IN.weight"] == (32,)
    assert shapes["layer1.0.bn1.BN.running_mean"] == (32,)
    assert shapes["layer2.3.bn1.IN.bias"] == (64,)
    assert shapes["layer3.5.bn1.BN.weight"] == (128,)
    assert "layer1.0.bn1.IN.running_mean" not in shapes  # instance norm keeps no statistics
    assert shapes["layer4.0.bn1.weight"] == (512,)  # IBN-a leaves layer4 alone
    assert not any(key.startswith("layer4") and ".IN." in key for key in shapes)
    assert shapes["layer4.0.downsample.0.weight"] == (2048, 1024, 1, 1)
    assert shapes["layer1.0.downsample.1.running_var"] == (256,)
    assert shapes["NL_2.0.g.weight"] == (1, 512, 1, 1)
    assert shapes["NL_2.1.theta.bias"] == (1,)
    assert shapes["NL_2.1.W.0.weight"] == (512, 1, 1, 1)
    assert shapes["NL_3.2.W.1.running_var"] == (1024,)
    non_local = {key.split(".")[0] + "." + key.split(".")[1] for key in shapes if "NL_" in key}
    assert non_local == {"NL_2.0", "NL_2.1", "NL_3.0", "NL_3.1", "NL_3.2"}


def test_se_keys_follow_fastreid() -> None:
    state = _meta(BackboneConfig(name="resnet50", se=True)).state_dict()
    assert state["layer1.0.se.fc.0.weight"].shape == (16, 256)  # 256 / 16
    assert state["layer4.2.se.fc.2.weight"].shape == (2048, 128)


def test_non_local_inner_channels_default_to_half() -> None:
    state = _meta(BackboneConfig(name="resnet50", non_local=True)).state_dict()
    assert state["NL_3.0.phi.weight"].shape == (512, 1024, 1, 1)


@pytest.mark.parametrize(
    ("name", "layer2_after", "layer3_after"),
    [
        ("resnet50", (2, 3), (3, 4, 5)),
        ("resnet101", (2, 3), tuple(range(14, 23))),
        ("resnet152", (6, 7), tuple(range(24, 36))),
        ("resnext101_32x4d", (2, 3), (20, 21, 22)),
    ],
)
def test_non_local_blocks_follow_the_last_blocks_of_stages(
    name: str, layer2_after: tuple[int, ...], layer3_after: tuple[int, ...]
) -> None:
    backbone = _meta(BackboneConfig(name=name, non_local=True))
    assert isinstance(backbone, ResNetBackbone)
    assert (backbone.NL_1_idx, backbone.NL_4_idx) == ((), ())
    assert backbone.NL_2_idx == layer2_after
    assert backbone.NL_3_idx == layer3_after


@pytest.mark.parametrize("name", ["resnet18", "resnet34"])
def test_non_local_on_basic_block_resnets_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="non_local"):
        build_backbone(BackboneConfig(name=name, non_local=True))


def test_reference_stem_uses_the_ceil_mode_max_pool() -> None:
    # conv1 maps H = 66 to 33; torchvision's pool (pad 1) gives floor((33 + 2 - 3) / 2) + 1 = 17,
    # FastReID's (pad 0, ceil) ceil((33 - 3) / 2) + 1 = 16. W = 32 → 16 → 8 either way.
    images = torch.randn(1, 3, 66, 32)
    with torch.no_grad():
        assert resnet18().eval().stem()(images).shape[-2:] == (17, 8)
        assert resnet18(reference_stem=True).eval().stem()(images).shape[-2:] == (16, 8)
    pool = resnet18(reference_stem=True).maxpool
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, 0, True)


def test_stage_views_run_like_the_backbone() -> None:
    torch.manual_seed(0)
    backbone = resnet50(ibn=True, non_local=True).eval()
    for block in [*backbone.NL_2, *backbone.NL_3]:
        nn.init.normal_(block.W[1].weight)  # make the non-local blocks matter
    assert isinstance(backbone, StagedBackbone)
    stage2 = backbone.stage(2)
    assert [type(m).__name__ for m in stage2] == [
        "Bottleneck",
        "Bottleneck",
        "Bottleneck",
        "NonLocalBlock",
        "Bottleneck",
        "NonLocalBlock",
    ]
    chained = nn.Sequential(*backbone.stem(), *(backbone.stage(s) for s in (1, 2, 3, 4)))
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(chained(images), backbone(images))


def test_mgn_split_gives_fastreid_numeric_keys() -> None:
    with torch.device("meta"):
        backbone = resnet50(ibn=True)
    body = nn.Sequential(
        *backbone.stem(), backbone.stage(1), backbone.stage(2), backbone.stage(3)[0]
    )
    keys = set(body.state_dict())
    assert {"0.weight", "1.running_mean", "4.0.conv1.weight", "5.3.bn3.weight"} <= keys
    assert {"6.conv1.weight", "6.bn1.IN.weight", "6.downsample.0.weight"} <= keys
    assert backbone.stage_channels == (256, 512, 1024, 2048)
    assert len(backbone.stage(3)[1:]) == 5


def test_channels_last_gives_the_same_features() -> None:
    torch.manual_seed(0)
    backbone = resnet50(ibn=True, se=True, non_local=True).eval()
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = backbone(images)
        backbone = backbone.to(memory_format=torch.channels_last)
        actual = backbone(images.to(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
