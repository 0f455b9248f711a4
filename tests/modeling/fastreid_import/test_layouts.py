"""Reading FastReID files and telling their key layouts and architectures apart."""

import argparse
from pathlib import Path

import pytest
import torch

from reid_platform.errors import ReidError
from reid_platform.modeling.fastreid_import import (
    Architecture,
    CheckpointLayout,
    detect_architecture,
    detect_layout,
    read_fastreid_checkpoint,
)
from reid_platform.modeling.fastreid_import.key_map import map_fastreid_keys
from reid_platform.modeling.fastreid_import.layouts import non_local_inner_channels

BN = {f: torch.ones(4) for f in ("weight", "bias", "running_mean", "running_var")}
PIXELS = {"pixel_mean": torch.zeros(1, 3, 1, 1), "pixel_std": torch.ones(1, 3, 1, 1)}


def _head(prefix: str, neck: str, classifier: str) -> dict[str, torch.Tensor]:
    state = {f"{prefix}.{neck}.{field}": value for field, value in BN.items()}
    state[f"{prefix}.{classifier}"] = torch.zeros(3, 4)
    return state


@pytest.mark.parametrize(
    ("state", "layout"),
    [
        ({**_head("heads", "bottleneck.0", "weight")}, CheckpointLayout.CURRENT),
        ({**_head("heads", "bottleneck.0", "classifier.weight"), **PIXELS}, "intermediate"),
        ({**_head("heads", "bnneck", "classifier.weight"), **PIXELS}, CheckpointLayout.OLD),
        ({**_head("b1_head", "bottleneck.1", "weight")}, CheckpointLayout.CURRENT),
        ({**_head("b22_head", "bottleneck.1", "classifier.weight")}, "intermediate"),
        ({"backbone.conv1.weight": torch.zeros(1), **PIXELS}, "intermediate"),
    ],
)
def test_detect_layout(state, layout) -> None:
    assert detect_layout(state) is CheckpointLayout(layout)


def test_detect_architecture() -> None:
    assert detect_architecture(_head("heads", "bnneck", "weight")) is Architecture.BASELINE
    assert detect_architecture(_head("b33_head", "bottleneck.1", "weight")) is Architecture.MGN


def test_head_keys_map_per_layout() -> None:
    current = {
        **_head("heads", "bottleneck.0", "weight"),
        "heads.pool_layer.p": torch.ones(1),
    }
    mapping = map_fastreid_keys(current, Architecture.BASELINE)
    assert mapping["heads.bottleneck.0.weight"].target == "head.neck.bn.weight"
    assert mapping["heads.weight"].target == "head.classifier.weight"
    assert mapping["heads.pool_layer.p"].target == "head.pooling.p"
    old = map_fastreid_keys(_head("heads", "bnneck", "classifier.weight"), Architecture.BASELINE)
    assert old["heads.bnneck.running_var"].target == "head.neck.bn.running_var"
    assert old["heads.classifier.weight"].target == "head.classifier.weight"
    mgn = {
        "b2_head.bottleneck.0.weight": torch.zeros(4, 8, 1, 1),
        **_head("b2_head", "bottleneck.1", "weight"),
        "backbone.5.3.conv2.weight": torch.zeros(1),
        "b3.1.0.downsample.1.bias": torch.zeros(1),
    }
    mapped = map_fastreid_keys(mgn, Architecture.MGN)
    assert mapped["b2_head.bottleneck.0.weight"].target == "b2_head.neck.projection.weight"
    assert mapped["b2_head.bottleneck.0.weight"].from_conv1x1
    assert mapped["b2_head.bottleneck.1.bias"].target == "b2_head.neck.bn.bias"
    assert mapped["backbone.5.3.conv2.weight"].target == "backbone.5.3.conv2.weight"
    assert mapped["b3.1.0.downsample.1.bias"].target == "b3.1.0.downsample.1.bias"
    assert map_fastreid_keys({"backbone.2.weight": torch.zeros(1)}, Architecture.MGN) == {
        "backbone.2.weight": None
    }
    assert map_fastreid_keys({"pixel_mean": torch.zeros(1)}, Architecture.BASELINE) == {
        "pixel_mean": None
    }


def test_read_raw_and_wrapped_files_strip_module(tmp_path: Path) -> None:
    state = {"module.backbone.conv1.weight": torch.ones(2), "module.heads.weight": torch.ones(3)}
    raw = tmp_path / "raw.pth"
    torch.save(state, raw)
    assert set(read_fastreid_checkpoint(raw).state) == {"backbone.conv1.weight", "heads.weight"}
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": state, "optimizer": {"state": {}}, "epoch": 3, "metric": 0.5}, wrapped)
    read = read_fastreid_checkpoint(wrapped)
    assert set(read.state) == {"backbone.conv1.weight", "heads.weight"}
    assert read.other_entries == ("optimizer", "epoch", "metric")


def test_unreadable_files_are_one_sentence_errors(tmp_path: Path) -> None:
    with pytest.raises(ReidError, match="does not exist"):
        read_fastreid_checkpoint(tmp_path / "absent.pth")
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": {"a": torch.ones(1)}, "cfg": argparse.Namespace(x=1)}, pickled)
    with pytest.raises(ReidError, match="cannot be read safely"):
        read_fastreid_checkpoint(pickled)
    not_state = tmp_path / "numbers.pth"
    torch.save({"epoch": 3}, not_state)
    with pytest.raises(ReidError, match="neither a state dict"):
        read_fastreid_checkpoint(not_state)


def test_non_local_width_from_g_weight() -> None:
    assert non_local_inner_channels({"backbone.conv1.weight": torch.zeros(1)}) is None
    state = {"backbone.NL_2.0.g.weight": torch.zeros(1, 512, 1, 1)}
    assert non_local_inner_channels(state) == 1
    state["backbone.NL_3.0.g.weight"] = torch.zeros(2, 1024, 1, 1)
    with pytest.raises(ReidError, match="differing widths"):
        non_local_inner_channels(state)
