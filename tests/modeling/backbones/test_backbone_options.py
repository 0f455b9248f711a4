"""Options a backbone cannot honour are errors; ResNeSt's last stride; the timm bridge's names."""

import pytest
import torch
from torch import nn

from reid_platform.config.model import BackboneConfig
from reid_platform.errors import ConfigError
from reid_platform.modeling.backbones import build_backbone, timm_bridge
from reid_platform.modeling.backbones.resnest import ResNeStBackbone


@pytest.mark.parametrize("option", ["ibn", "se", "non_local", "reference_stem"])
@pytest.mark.parametrize("name", ["resnest50", "timm:mobilenetv3_large_100"])
def test_unsupported_options_are_config_errors(name: str, option: str) -> None:
    config = BackboneConfig.model_validate({"name": name, option: True})
    with pytest.raises(ConfigError, match=f"model.backbone.{option}=true"):
        build_backbone(config)


def test_resnest_last_stride_one_matches_fastreid_layout() -> None:
    with torch.device("meta"):
        backbone = build_backbone(BackboneConfig(name="resnest50", last_stride=1))
    assert isinstance(backbone, ResNeStBackbone)
    first = backbone.layer4[0]
    assert isinstance(first.avd_last, nn.AvgPool2d) and first.avd_last.stride == 1
    assert isinstance(first.downsample[0], nn.Identity)
    assert backbone.layer3[0].avd_last.stride == 2  # earlier stages untouched
    assert "layer1.0.conv2.fc1.weight" in backbone.state_dict()
    assert "conv1.6.weight" in backbone.state_dict()  # deep stem


def test_unknown_timm_model_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match="did you mean 'timm:efficientnet_b0'"):
        build_backbone(BackboneConfig(name="timm:efficentnet_b0"))


def test_vit_cannot_drop_a_last_stride() -> None:
    with pytest.raises(ConfigError, match="last_stride=2"):
        build_backbone(BackboneConfig(name="timm:vit_tiny_patch16_224", last_stride=1))


def test_syncbn_converts_every_batch_norm() -> None:
    backbone = build_backbone(BackboneConfig(name="resnet18", ibn=True, norm="syncbn"))
    kinds = {type(module) for module in backbone.modules()}
    assert nn.SyncBatchNorm in kinds and nn.BatchNorm2d not in kinds
    assert isinstance(backbone.get_submodule("layer1.0.bn1.BN"), nn.SyncBatchNorm)
    with torch.no_grad():
        assert backbone.eval()(torch.randn(1, 3, 64, 32)).shape == (1, 512, 4, 2)


def test_a_timm_model_that_cannot_be_built_on_meta_is_probed_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As timm's RegNet under torch 2.11: its constructor runs an op without a meta kernel.
    create_model = timm_bridge.timm.create_model

    def no_meta_kernels(*args, **kwargs):  # type: ignore[no-untyped-def]
        if torch.empty(0).device.type == "meta":
            raise NotImplementedError("aten::_unique2: no meta kernel")
        return create_model(*args, **kwargs)

    expected = timm_bridge._native_layout("resnet18")
    monkeypatch.setattr(timm_bridge.timm, "create_model", no_meta_kernels)
    assert timm_bridge._native_layout("resnet18") == expected == (32, False)
    backbone = build_backbone(BackboneConfig(name="timm:resnet18", last_stride=1))
    assert backbone(torch.zeros(1, 3, 64, 32)).shape[-2:] == (4, 2)
