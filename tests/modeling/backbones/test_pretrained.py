"""ImageNet weights from a file or a cache folder, never downloaded; random init announced once."""

import logging
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from torchvision import models as tv_models

from reid_platform.config.model import BackboneConfig, PretrainedConfig
from reid_platform.errors import ConfigError
from reid_platform.modeling.backbones import build_backbone
from reid_platform.modeling.backbones.resnet import resnet18

PRETRAINED_LOGGER = "reid_platform.modeling.backbones.pretrained"


def _config(name: str = "resnet18", **pretrained: str) -> BackboneConfig:
    return BackboneConfig(name=name, pretrained=PretrainedConfig(**pretrained))


def _torchvision_resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return tv_models.resnet18().state_dict()


def _assert_loaded(backbone: torch.nn.Module, source: dict[str, torch.Tensor]) -> None:
    state = backbone.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(value, source[key], msg=key)


def test_weights_file_loads_every_tensor(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = _torchvision_resnet18_state()
    file = tmp_path / "weights.pth"
    torch.save(source, file)
    with caplog.at_level(logging.INFO, logger=PRETRAINED_LOGGER):
        backbone = build_backbone(_config(path=str(file)))
    _assert_loaded(backbone, source)
    assert "Loaded 120 of 120 backbone tensors" in caplog.text
    assert "fc.weight" not in caplog.text  # the ImageNet classifier is expected to be unused


def test_wrapped_data_parallel_checkpoint_loads(tmp_path: Path) -> None:
    source = _torchvision_resnet18_state()
    file = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.items()}, "epoch": 3}, file)
    _assert_loaded(build_backbone(_config(path=str(file))), source)


def test_cache_dir_finds_torchvision_file_names(tmp_path: Path) -> None:
    source = _torchvision_resnet18_state()
    torch.save(source, tmp_path / "resnet18-f37072fd.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet34-b627a593.pth")
    _assert_loaded(build_backbone(_config(cache_dir=str(tmp_path))), source)


def test_cache_dir_finds_ibn_net_file_names(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = {
        key: torch.randn_like(value) if value.is_floating_point() else value
        for key, value in resnet18(ibn=True).state_dict().items()
    }
    torch.save(source, tmp_path / "resnet18_ibn_a-2f571257.pth")
    torch.save(_torchvision_resnet18_state(), tmp_path / "resnet18-f37072fd.pth")
    backbone = build_backbone(
        BackboneConfig(
            name="resnet18", ibn=True, pretrained=PretrainedConfig(cache_dir=str(tmp_path))
        )
    )
    _assert_loaded(backbone, source)


def test_missing_new_layers_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "resnet18.pth"
    torch.save(_torchvision_resnet18_state(), file)
    config = BackboneConfig(name="resnet18", se=True, pretrained=PretrainedConfig(path=str(file)))
    with caplog.at_level(logging.INFO, logger=PRETRAINED_LOGGER):
        build_backbone(config)
    assert "kept at initialisation: layer1.0.se.fc.0.weight" in caplog.text


def test_absent_weights_give_one_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=PRETRAINED_LOGGER):
        build_backbone(_config())
    records = [r for r in caplog.records if r.name == PRETRAINED_LOGGER]
    assert len(records) == 1
    assert "random initialisation" in records[0].getMessage()


def test_empty_or_missing_cache_dir_means_random_init(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for folder in (tmp_path, tmp_path / "not-there"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=PRETRAINED_LOGGER):
            build_backbone(_config(cache_dir=str(folder)))
        assert "resnet18-*.pth" in caplog.text and "random initialisation" in caplog.text


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "resnet50.pth"
    with pytest.raises(ConfigError, match="nowhere"):
        build_backbone(_config(path=str(missing)))


def test_unrelated_weights_are_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, file)
    with pytest.raises(ConfigError, match="no tensor matching"):
        build_backbone(_config(path=str(file)))


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "broken.pth"
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"broken\.pth"):
        build_backbone(_config(path=str(file)))


def test_timm_model_loads_a_local_file(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = timm.create_model("mobilenetv3_small_050").state_dict()
    file = tmp_path / "mnv3.pth"
    torch.save(source, file)
    backbone = build_backbone(
        BackboneConfig(
            name="timm:mobilenetv3_small_050",
            last_stride=2,
            pretrained=PretrainedConfig(path=str(file)),
        )
    )
    torch.testing.assert_close(
        backbone.state_dict()["body.conv_stem.weight"], source["conv_stem.weight"]
    )


def test_timm_model_finds_the_hugging_face_cache_layout(tmp_path: Path) -> None:
    torch.manual_seed(4)
    source = timm.create_model("mobilenetv3_small_050").state_dict()
    snapshot = tmp_path / "models--timm--mobilenetv3_small_050.lamb_in1k" / "snapshots" / "ab12"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in source.items()}, str(snapshot / "model.safetensors"))
    backbone = build_backbone(
        BackboneConfig(
            name="timm:mobilenetv3_small_050",
            last_stride=2,
            pretrained=PretrainedConfig(cache_dir=str(tmp_path)),
        )
    )
    torch.testing.assert_close(
        backbone.state_dict()["body.conv_stem.weight"], source["conv_stem.weight"]
    )


def test_timm_weights_of_another_model_are_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "resnet18.pth"
    torch.save(_torchvision_resnet18_state(), file)
    config = BackboneConfig(
        name="timm:mobilenetv3_small_050",
        last_stride=2,
        pretrained=PretrainedConfig(path=str(file)),
    )
    with pytest.raises(ConfigError, match="cannot build timm:mobilenetv3_small_050"):
        build_backbone(config)
