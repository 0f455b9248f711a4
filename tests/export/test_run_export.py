"""`export_model`: every requested format into one folder with a merged `manifest.json`;
formats that cannot run are recorded, never raised; `speed_metrics` picks the first format."""

import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reid_platform import metric_names
from reid_platform.config import ReidConfig, load_config
from reid_platform.export import (
    BackendSpeed,
    ExportFailure,
    LabeledImages,
    ManifestFile,
    OnnxExport,
    SpeedReport,
    ValidationImages,
    export_model,
    onnx_manifest,
    read_manifest_file,
    speed_metrics,
    tensorrt_unavailable_reason,
)
from reid_platform.modeling import build_model

OVERRIDES = [
    "input.size_test=[64,32]",
    "model.backbone.name=timm:test_resnet",
    "export.throughput_batch=4",
]


def _config(*overrides: str) -> ReidConfig:
    return load_config("experiments/quickstart.yaml", [*OVERRIDES, *overrides])


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    config = _config()
    return build_model(config.model, config.input, num_classes=8).eval()


@pytest.fixture(scope="module")
def validation(query_gallery: tuple[LabeledImages, LabeledImages]) -> ValidationImages:
    return ValidationImages(*query_gallery, source="validation")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT runs here")
def test_onnx_is_exported_and_tensorrt_skipped_with_the_sentence(
    model: nn.Module, validation: ValidationImages, tmp_path: Path
) -> None:
    manifest = export_model(
        model, _config("export.formats=[onnx,tensorrt]"), tmp_path, images=validation,
        source_checkpoint="model.pt",
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "model.onnx"]
    assert read_manifest_file(tmp_path) == manifest
    (entry,) = manifest.exports
    assert (entry.format, entry.precision, entry.artifact) == ("onnx", "fp32", "model.onnx")
    assert entry.sha256 == _sha256(tmp_path / "model.onnx")
    assert entry.source_checkpoint == "model.pt"
    assert entry.parity is not None and entry.parity.max_abs_diff <= 1e-4
    assert entry.validation_map is not None and entry.speed is not None
    reason = tensorrt_unavailable_reason()
    assert reason is not None
    assert manifest.failures == (ExportFailure("tensorrt", "fp32", "skipped", reason),)
    assert speed_metrics(manifest, ["tensorrt", "onnx"]) == {
        metric_names.EXPORT_LATENCY_MS: entry.speed.exported.latency_ms,
        metric_names.EXPORT_IMAGES_PER_SEC: entry.speed.exported.throughput,
    }
    assert entry.speed.exported.throughput > 0 and entry.speed.exported.batch == 4


def test_reexports_merge_and_a_failed_one_keeps_the_valid_artifact(
    model: nn.Module, validation: ValidationImages, tmp_path: Path
) -> None:
    first = export_model(model, _config(), tmp_path, images=validation, measure=False)
    fp32_sha = first.find("onnx", "fp32").sha256
    assert fp32_sha == _sha256(tmp_path / "model.onnx")

    # fp16 on training images: parity only, no mAP.
    train_only = ValidationImages(
        LabeledImages(validation.images, np.arange(len(validation)), np.zeros(len(validation))),
        LabeledImages(validation.images[:0], np.zeros(0), np.zeros(0)),
        source="train",
    )
    second = export_model(
        model, _config(), tmp_path, images=train_only, precision="fp16", measure=False
    )
    assert [(e.format, e.precision) for e in second.exports] == [
        ("onnx", "fp32"),
        ("onnx", "fp16"),
    ]
    fp16 = second.find("onnx", "fp16")
    assert fp16.artifact == "model.fp16.onnx" and fp16.sha256 == _sha256(tmp_path / fp16.artifact)
    assert fp16.validation_map is None
    assert fp16.parity is not None and fp16.parity.min_cosine >= 0.999

    # An impossible tolerance fails the fp32 re-export; the earlier model.onnx stays listed
    # and on disk, unchanged. ONNX int8 is refused with its sentence.
    strict = _config("export.parity_tolerance=1e-12")
    third = export_model(model, strict, tmp_path, images=validation, measure=False)
    fourth = export_model(model, _config(), tmp_path, images=validation, precision="int8")
    assert fourth == read_manifest_file(tmp_path)
    assert [(e.precision, e.sha256) for e in fourth.exports] == [
        ("fp32", fp32_sha),
        ("fp16", fp16.sha256),
    ]
    assert _sha256(tmp_path / "model.onnx") == fp32_sha
    (failed,) = third.failures
    assert (failed.format, failed.precision, failed.status) == ("onnx", "fp32", "failed")
    assert failed.reason.startswith("the ONNX export differs from PyTorch by up to")
    assert [(f.precision, f.status) for f in fourth.failures] == [
        ("fp32", "failed"),
        ("int8", "failed"),
    ]
    assert fourth.failures[1].reason.startswith("int8 applies to TensorRT engines only; ")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json",
        "model.fp16.onnx",
        "model.onnx",
    ]


def _speed(latency_ms: float, throughput: float) -> SpeedReport:
    exported = BackendSpeed(latency_ms=latency_ms, throughput=throughput, batch=32)
    return SpeedReport("x", exported, "pytorch", exported, "cpu", 1, (20, 5))


def test_speed_metrics_follow_the_format_order(
    exported_variant: Callable[[str], tuple[nn.Module, OnnxExport]],
) -> None:
    base = onnx_manifest(exported_variant("ibn")[1])
    onnx_fp16 = replace(
        base, precision="fp16", artifact="model.fp16.onnx", speed=_speed(3.0, 300.0)
    )
    onnx_fp32 = replace(base, speed=None)
    engine = replace(base, format="tensorrt", artifact="model.engine", speed=_speed(1.0, 1000.0))
    manifest = ManifestFile(exports=(onnx_fp32, onnx_fp16, engine))
    assert speed_metrics(manifest, ["tensorrt", "onnx"]) == {
        "export/latency_ms": 1.0,
        "export/images_per_sec": 1000.0,
    }
    # onnx fp32 has no measurement, so the first onnx record with one (fp16) counts.
    assert speed_metrics(manifest, ["onnx", "tensorrt"]) == {
        "export/latency_ms": 3.0,
        "export/images_per_sec": 300.0,
    }
    assert speed_metrics(manifest, ["onnx"], precision="fp32") == {}
    assert speed_metrics(ManifestFile(), ["onnx"]) == {}
