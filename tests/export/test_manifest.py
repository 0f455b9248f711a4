"""manifest.json: round trip, every field the issue names, and the artifact checksum."""

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from torch import nn

from reid_platform.config.input import InputConfig
from reid_platform.export import (
    BackendSpeed,
    ExportError,
    MapComparison,
    OnnxExport,
    ParityReport,
    SpeedReport,
    file_sha256,
    onnx_manifest,
    read_manifest,
    verify_artifact,
    write_manifest,
)

ExportedVariant = Callable[[str], tuple[nn.Module, OnnxExport]]


def _manifest_dir(exported_variant: ExportedVariant, tmp_path: Path) -> Path:
    _model, exported = exported_variant("ibn")
    shutil.copy(exported.path, tmp_path / exported.path.name)
    manifest = onnx_manifest(
        exported,
        parity=ParityReport(3e-7, 0.9999999, (1, 7), 10),
        validation_map=MapComparison(0.8125, 0.8125),
        speed=SpeedReport(
            exported_backend="onnxruntime-cpu",
            exported=BackendSpeed(latency_ms=4.5, throughput=900.0, batch=32),
            pytorch_backend="pytorch-eager-cpu",
            pytorch=BackendSpeed(latency_ms=9.0, throughput=450.0, batch=32),
            device="cpu",
            threads=2,
            repeats=(20, 5),
        ),
        config_hash="0123456789abcdef",
        source_checkpoint="runs:/abc/checkpoints/model.pt",
    )
    write_manifest(manifest, tmp_path)
    return tmp_path


def test_round_trip_keeps_every_field(
    exported_variant: ExportedVariant, tmp_path: Path, tiny_input: InputConfig
) -> None:
    folder = _manifest_dir(exported_variant, tmp_path)
    manifest = read_manifest(folder / "manifest.json")
    assert read_manifest(folder) == manifest
    write_manifest(manifest, tmp_path / "again.json")
    assert read_manifest(tmp_path / "again.json") == manifest
    assert manifest.speed is not None and manifest.speed.throughput_ratio == pytest.approx(2.0)

    raw = json.loads((folder / "manifest.json").read_text())
    assert (raw["format"], raw["precision"], raw["artifact"]) == ("onnx", "fp32", "model.onnx")
    assert raw["input"]["name"] == "images_rgb_0_255"
    assert raw["input_shape"] == ["batch", 3, *tiny_input.size_test]
    assert raw["input"]["layout"] == "NCHW" and raw["input"]["value_range"] == [0.0, 255.0]
    assert raw["input"]["mean"] == list(tiny_input.mean) and raw["input"]["std"] == list(
        tiny_input.std
    )
    assert (raw["embedding_dim"], raw["normalized"], raw["opset"]) == (512, True, 20)
    assert raw["parity"]["max_abs_diff"] == 3e-7 and raw["parity"]["min_cosine"] == 0.9999999
    assert raw["validation_map"] == {"exported_map": 0.8125, "pytorch_map": 0.8125}
    assert raw["speed"]["exported"]["latency_ms"] == 4.5
    assert raw["speed"]["exported"]["throughput"] == 900.0
    assert raw["config_hash"] == "0123456789abcdef"
    assert raw["source_checkpoint"] == "runs:/abc/checkpoints/model.pt"
    assert {"python", "torch", "onnx", "onnxruntime"} <= raw["tool_versions"].keys()


def test_checksum_matches_the_file_and_catches_a_changed_one(
    exported_variant: ExportedVariant, tmp_path: Path
) -> None:
    folder = _manifest_dir(exported_variant, tmp_path)
    manifest = read_manifest(folder)
    artifact = folder / manifest.artifact
    assert manifest.sha256 == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert file_sha256(artifact) == manifest.sha256
    verify_artifact(manifest, artifact)

    with artifact.open("ab") as stream:
        stream.write(b"\0")
    with pytest.raises(ExportError, match="SHA-256"):
        verify_artifact(manifest, artifact)
    with pytest.raises(ExportError, match="does not exist"):
        verify_artifact(manifest, folder / "missing.onnx")


def test_invalid_manifest_names_the_field(
    exported_variant: ExportedVariant, tmp_path: Path
) -> None:
    folder = _manifest_dir(exported_variant, tmp_path)
    raw = json.loads((folder / "manifest.json").read_text())
    raw["precision"] = "fp8"
    (folder / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ExportError, match="invalid at precision"):
        read_manifest(folder)
    with pytest.raises(ExportError, match="does not exist"):
        read_manifest(tmp_path / "nowhere.json")
