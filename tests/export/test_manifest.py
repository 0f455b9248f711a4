"""manifest.json: artifact names, round trip, every field the issue names, the artifact checksum,
`find` and its errors, and `merged` on hand-worked cases."""

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from torch import nn

from reid_platform.config.input import InputConfig
from reid_platform.export import (
    BackendSpeed,
    ExportError,
    ExportFailure,
    ExportManifest,
    ManifestFile,
    MapComparison,
    OnnxExport,
    ParityReport,
    SpeedReport,
    artifact_name,
    file_sha256,
    onnx_manifest,
    read_manifest_file,
    verify_artifact,
    write_manifest_file,
)

ExportedVariant = Callable[[str], tuple[nn.Module, OnnxExport]]

SKIPPED = ExportFailure("tensorrt", "fp16", "skipped", "TensorRT export needs a CUDA GPU.")


def test_artifact_names_follow_one_rule() -> None:
    names = {
        ("onnx", "fp32"): "model.onnx",
        ("onnx", "fp16"): "model.fp16.onnx",
        ("tensorrt", "fp32"): "model.engine",
        ("tensorrt", "fp16"): "model.fp16.engine",
        ("tensorrt", "int8"): "model.int8.engine",
    }
    for (format, precision), name in names.items():
        assert artifact_name(format, precision) == name  # type: ignore[arg-type]
    with pytest.raises(ExportError, match=r"^int8 applies to TensorRT engines only; "):
        artifact_name("onnx", "int8")


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
    write_manifest_file(ManifestFile(exports=(manifest,), failures=(SKIPPED,)), tmp_path)
    return tmp_path


def test_round_trip_keeps_every_field(
    exported_variant: ExportedVariant, tmp_path: Path, tiny_input: InputConfig
) -> None:
    folder = _manifest_dir(exported_variant, tmp_path)
    manifest = read_manifest_file(folder / "manifest.json")
    assert read_manifest_file(folder) == manifest
    assert write_manifest_file(manifest, tmp_path / "again") == tmp_path / "again/manifest.json"
    assert read_manifest_file(tmp_path / "again") == manifest
    assert manifest.failures == (SKIPPED,)
    entry = manifest.find("onnx")
    assert entry.speed is not None and entry.speed.throughput_ratio == pytest.approx(2.0)

    top = json.loads((folder / "manifest.json").read_text())
    assert top["manifest_version"] == 2 and len(top["exports"]) == 1
    assert top["failures"] == [
        {
            "format": "tensorrt",
            "precision": "fp16",
            "status": "skipped",
            "reason": "TensorRT export needs a CUDA GPU.",
        }
    ]
    raw = top["exports"][0]
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
    manifest = read_manifest_file(folder).find("onnx", "fp32")
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
    raw["exports"][0]["precision"] = "fp8"
    (folder / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ExportError, match=r"invalid at exports\.0\.precision"):
        read_manifest_file(folder)
    with pytest.raises(ExportError, match="does not exist"):
        read_manifest_file(tmp_path / "nowhere.json")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ExportError, match="is invalid"):
        read_manifest_file(folder)
    # The first schema: a single record at the top level.
    (folder / "manifest.json").write_text(json.dumps(raw["exports"][0] | {"manifest_version": 1}))
    with pytest.raises(ExportError, match="schema version 1"):
        read_manifest_file(folder)


def test_an_artifact_field_that_is_not_the_artifact_name_is_refused(
    exported_variant: ExportedVariant, tmp_path: Path
) -> None:
    folder = _manifest_dir(exported_variant, tmp_path)
    entry = read_manifest_file(folder).find("onnx")
    with pytest.raises(ExportError, match=r"artifact field of the onnx fp32 export is 'x\.onnx'"):
        replace(entry, artifact="x.onnx")
    raw = json.loads((folder / "manifest.json").read_text())
    raw["exports"][0]["artifact"] = "../evil.onnx"
    (folder / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ExportError) as caught:
        read_manifest_file(folder)
    assert str(caught.value) == (
        f"export manifest {folder / 'manifest.json'} is invalid: the artifact field of the onnx "
        "fp32 export is '../evil.onnx', but that export is always named 'model.onnx'"
    )


def test_writing_a_manifest_replaces_it_whole_and_leaves_no_temporary_file(
    exported_variant: ExportedVariant, tmp_path: Path
) -> None:
    folder = _manifest_dir(exported_variant, tmp_path)
    before = read_manifest_file(folder)
    unwritable = ManifestFile(exports=before.exports, failures=before.failures)
    object.__setattr__(unwritable, "manifest_version", object())  # cannot be serialised
    with pytest.raises(Exception):  # noqa: B017 - pydantic's serialisation error
        write_manifest_file(unwritable, folder)
    assert read_manifest_file(folder) == before  # the old file is intact
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx"]
    write_manifest_file(ManifestFile(failures=(SKIPPED,)), folder)
    assert read_manifest_file(folder) == ManifestFile(failures=(SKIPPED,))
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx"]


Record = Callable[[str, str, str], ExportManifest]


@pytest.fixture(scope="module")
def record(exported_variant: ExportedVariant) -> Record:
    """`record(format, precision, sha)`: a real record with those three fields replaced (only
    they matter to `find` and `merged`)."""
    base = onnx_manifest(exported_variant("ibn")[1])

    def make(format: str, precision: str, sha: str) -> ExportManifest:
        name = artifact_name(format, precision)  # type: ignore[arg-type]
        return replace(base, format=format, precision=precision, artifact=name, sha256=sha)  # type: ignore[arg-type]

    return make


def _failure(format: str, precision: str, reason: str) -> ExportFailure:
    return ExportFailure(format, precision, "failed", reason)  # type: ignore[arg-type]


def _keys(
    manifest: ManifestFile,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    exports: list[tuple[str, str, str]] = [
        (e.format, e.precision, e.sha256) for e in manifest.exports
    ]
    return exports, [(f.format, f.precision, f.reason) for f in manifest.failures]


def test_find_picks_one_export_or_says_what_there_is(record: Record) -> None:
    manifest = ManifestFile(
        exports=(record("onnx", "fp32", "a"), record("onnx", "fp16", "b")),
        failures=(SKIPPED,),
    )
    assert manifest.find("onnx", "fp16").sha256 == "b"
    with pytest.raises(ExportError, match=r"there are 2 onnx exports \(fp32, fp16\)"):
        manifest.find("onnx")
    with pytest.raises(ExportError) as missing:
        manifest.find("tensorrt")
    assert str(missing.value) == (
        "there is no tensorrt export (tensorrt fp16 skipped: TensorRT export needs a CUDA GPU.); "
        "the manifest lists onnx fp32, onnx fp16"
    )
    with pytest.raises(ExportError, match=r"^there is no tensorrt int8 export; the manifest lists"):
        manifest.find("tensorrt", "int8")
    with pytest.raises(ExportError, match=r"lists nothing$"):
        ManifestFile().find("onnx")


def test_merge_replaces_per_format_and_precision(record: Record) -> None:
    old = ManifestFile(
        exports=(record("onnx", "fp32", "a"), record("onnx", "fp16", "h")),
        failures=(_failure("tensorrt", "fp16", "no GPU"),),
    )
    newer = ManifestFile(
        exports=(record("tensorrt", "fp16", "c"), record("onnx", "fp32", "b")),
        failures=(_failure("onnx", "fp16", "parity"),),
    )
    # onnx fp32 replaced in place; onnx fp16 kept next to its new failure; the tensorrt fp16
    # success is appended and clears that pair's old failure.
    assert _keys(old.merged(newer)) == (
        [("onnx", "fp32", "b"), ("onnx", "fp16", "h"), ("tensorrt", "fp16", "c")],
        [("onnx", "fp16", "parity")],
    )


def test_merge_keeps_a_success_through_failures_until_a_new_success(record: Record) -> None:
    first = ManifestFile(exports=(record("onnx", "fp32", "a"),))
    failed = first.merged(ManifestFile(failures=(_failure("onnx", "fp32", "x"),)))
    assert _keys(failed) == ([("onnx", "fp32", "a")], [("onnx", "fp32", "x")])
    failed_again = failed.merged(ManifestFile(failures=(_failure("onnx", "fp32", "y"),)))
    assert _keys(failed_again) == ([("onnx", "fp32", "a")], [("onnx", "fp32", "y")])
    succeeded = failed_again.merged(ManifestFile(exports=(record("onnx", "fp32", "d"),)))
    assert _keys(succeeded) == ([("onnx", "fp32", "d")], [])
    both = succeeded.merged(ManifestFile(exports=(record("onnx", "fp16", "e"),)))
    assert _keys(both) == ([("onnx", "fp32", "d"), ("onnx", "fp16", "e")], [])
    assert ManifestFile().merged(both) == both and both.merged(ManifestFile()) == both


def test_a_pair_listed_twice_is_refused(record: Record) -> None:
    with pytest.raises(ExportError, match="lists onnx fp32 more than once in exports"):
        ManifestFile(exports=(record("onnx", "fp32", "a"), record("onnx", "fp32", "b")))
