"""`reid import-fastreid`: writes a loadable model file, or refuses in one sentence."""

from pathlib import Path

import pytest
import torch
import yaml

from reid_platform.cli import main
from reid_platform.config import config_from_mapping
from reid_platform.modeling import build_model

DATASET = {"name": "market1501", "root": "unused"}
RAW_CONFIG = {
    "seed": 0,
    "data": {"train": [DATASET], "test": [DATASET]},
    "input": {"size_train": [64, 32], "size_test": [64, 32]},
}


def _fastreid_name(key: str) -> str:
    """Our ResNet-18 BoT key → FastReID's current layout (notes §4.2)."""
    if key.startswith("backbone."):
        return key
    if key.startswith("head.neck.bn."):
        return "heads.bottleneck.0." + key.removeprefix("head.neck.bn.")
    assert key == "head.classifier.weight", key
    return "heads.weight"


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    config = config_from_mapping(RAW_CONFIG, ["model.backbone.name=resnet18"])
    model = build_model(config.model, config.input, num_classes=6)
    state = {_fastreid_name(k): v for k, v in model.state_dict().items()}
    path = tmp_path / "model_final.pth"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 5}, path)
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(RAW_CONFIG))
    return path


def _error_line(err: str) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert err.rstrip().endswith(errors[0])
    return errors[0]


def test_import_writes_a_loadable_model_file(checkpoint, config_file, tmp_path, capsys) -> None:
    out = tmp_path / "model.pt"
    argv = ["import-fastreid", str(checkpoint), "--config", str(config_file)]
    status = main([*argv, "model.backbone.name=resnet18", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    payload = torch.load(out, weights_only=True)
    assert payload["num_classes"] == 6
    assert len(payload["model"]) == len(torch.load(checkpoint, weights_only=True)["model"])
    assert "heads.bottleneck.0.weight" in captured.out and "head.neck.bn.weight" in captured.out
    assert "current" in captured.out and "not read: epoch" in captured.out


def test_refusal_exits_non_zero_with_one_sentence(
    checkpoint, config_file, tmp_path, capsys
) -> None:
    payload = torch.load(checkpoint, weights_only=True)
    payload["model"]["backbone.extra.weight"] = torch.zeros(2)
    torch.save(payload, checkpoint)
    out = tmp_path / "model.pt"
    argv = ["import-fastreid", str(checkpoint), "model.backbone.name=resnet18"]
    status = main([*argv, "--config", str(config_file), "--out", str(out)])
    captured = capsys.readouterr()
    assert status != 0
    sentence = _error_line(captured.err)
    assert "refusing a partial load" in sentence and "backbone.extra.weight" in sentence
    assert "backbone.extra.weight" in captured.out  # the table of keys not placed
    assert not out.exists()


def test_wrong_config_is_one_sentence(checkpoint, config_file, tmp_path, capsys) -> None:
    argv = ["import-fastreid", str(checkpoint), "--config", str(config_file)]
    status = main([*argv, "--out", str(tmp_path / "m.pt")])  # resnet50 config, resnet18 weights
    sentence = _error_line(capsys.readouterr().err)
    assert status != 0 and "model.backbone.name=resnet18" in sentence
