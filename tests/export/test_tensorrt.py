"""TensorRT: the one-sentence unavailability (CPU), precision rules per TensorRT version, and on a
GPU with the tensorrt package, engines built from the exported ONNX and checked for parity."""

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from reid_platform.config.export import ExportConfig
from reid_platform.evaluation import Evaluator
from reid_platform.export import (
    BatchProfile,
    ExportError,
    LabeledImages,
    OnnxExport,
    TensorRTEmbedder,
    build_engine,
    export_onnx,
    tensorrt_unavailable_reason,
    validation_map,
    verify_engine,
)
from reid_platform.export.trt_availability import describe_unavailability, require_tensorrt
from reid_platform.export.trt_build import Precision, onnx_precision, onnx_precision_for

Variant = tuple[nn.Module, OnnxExport]

REASON = tensorrt_unavailable_reason()
needs_tensorrt = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_missing_package_and_gpu_are_each_named_in_one_sentence() -> None:
    neither = describe_unavailability(has_package=False, has_gpu=False)
    no_package = describe_unavailability(has_package=False, has_gpu=True)
    no_gpu = describe_unavailability(has_package=True, has_gpu=False)
    broken = describe_unavailability(has_package=True, has_gpu=True, import_error="OSError: x")
    assert describe_unavailability(has_package=True, has_gpu=True) is None
    assert neither is not None and "tensorrt Python package and a CUDA GPU" in neither
    assert no_package is not None and "tensorrt Python package" in no_package
    assert "GPU" not in no_package
    assert no_gpu == "TensorRT export needs a CUDA GPU, and torch sees none on this machine."
    assert broken is not None and "importing it failed (OSError: x)" in broken
    for sentence in (neither, no_package, no_gpu, broken):
        assert sentence.count(". ") == 0 and sentence.endswith(".")


def test_this_machine_reason_matches_what_it_has() -> None:
    has_package = importlib.util.find_spec("tensorrt") is not None
    has_gpu = torch.cuda.is_available()
    if has_package and has_gpu:
        pytest.skip("TensorRT and a GPU are both here")
    assert describe_unavailability(has_package=has_package, has_gpu=has_gpu) == REASON


@pytest.mark.skipif(REASON is None, reason="TensorRT is available here")
def test_build_without_tensorrt_raises_the_sentence(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as caught:
        build_engine(
            tmp_path / "model.onnx",
            tmp_path / "model.engine",
            precision="fp16",
            profile=BatchProfile(1, 8, 32),
        )
    assert str(caught.value) == REASON
    with pytest.raises(ExportError, match=r"^TensorRT export needs"):
        require_tensorrt()


def test_precision_rules_per_tensorrt_version() -> None:
    assert onnx_precision_for("fp16", 10) == "fp32"  # TRT 10: BuilderFlag.FP16
    assert onnx_precision_for("int8", 10) == "fp32"  # TRT 10: entropy calibration
    assert onnx_precision_for("fp16", 11) == "fp16"  # TRT 11: a reduced-precision ONNX
    with pytest.raises(ExportError, match="TensorRT 11 int8 needs an explicitly quantised ONNX"):
        onnx_precision_for("int8", 11)
    with pytest.raises(ExportError, match="min <= opt <= max"):
        BatchProfile(1, 64, 32)


def test_onnx_precision_reads_the_file(exported_variant: Callable[[str], Variant]) -> None:
    _model, exported = exported_variant("ibn")
    assert onnx_precision(exported.path) == "fp32"


def _engine(
    variant: Variant, tmp_path: Path, precision: Precision, images: Tensor | None = None
) -> Path:
    model, exported = variant
    trt_major = int(require_tensorrt().__version__.split(".")[0])
    onnx_dtype = onnx_precision_for(precision, trt_major)
    onnx_path = exported.path
    if onnx_dtype != "fp32":
        config = ExportConfig(normalize_output=exported.normalized)
        onnx_path = export_onnx(model, config, tmp_path / "reduced.onnx", precision=onnx_dtype).path
    calibration = None if images is None else images.numpy()
    build = build_engine(
        onnx_path,
        tmp_path / f"model_{precision}.engine",
        precision=precision,
        profile=BatchProfile(1, 8, 16),
        calibration_images=calibration,
        calibration_batch=4,
    )
    assert build.path.is_file() and build.precision == precision
    return build.path


@pytest.mark.gpu
@needs_tensorrt
@pytest.mark.parametrize("name", ["ibn", "gem_learnable", "reduction"])
def test_fp32_engine_matches_pytorch(
    exported_variant: Callable[[str], Variant], name: str, tmp_path: Path, images: Tensor
) -> None:
    model, exported = exported_variant(name)
    engine = _engine((model, exported), tmp_path, "fp32")
    report = verify_engine(engine, model, images, normalized=exported.normalized)
    assert report.max_abs_diff <= 1e-3 and report.min_cosine >= 0.9999, report
    assert TensorRTEmbedder(engine).max_batch == 16


@pytest.mark.gpu
@needs_tensorrt
def test_fp16_engine_parity_and_map(
    exported_variant: Callable[[str], Variant],
    tmp_path: Path,
    images: Tensor,
    query_gallery: tuple[LabeledImages, LabeledImages],
) -> None:
    model, exported = exported_variant("gem_learnable")
    engine = _engine((model, exported), tmp_path, "fp16")
    report = verify_engine(engine, model, images, normalized=exported.normalized)
    assert report.min_cosine >= 0.999, report
    query, gallery = query_gallery
    maps = validation_map(
        TensorRTEmbedder(engine), model, query, gallery, evaluator=Evaluator(),
        normalized=exported.normalized, batch_size=8,
    )  # fmt: skip
    assert abs(maps.difference) <= 0.05, maps


@pytest.mark.gpu
@needs_tensorrt
def test_int8_engine_calibrates_on_tensorrt_10(
    exported_variant: Callable[[str], Variant], tmp_path: Path, calibration_images: Tensor
) -> None:
    if int(require_tensorrt().__version__.split(".")[0]) >= 11:
        pytest.skip("TensorRT 11 has no implicit int8 calibration")
    model, exported = exported_variant("ibn")
    engine = _engine((model, exported), tmp_path, "int8", calibration_images)
    report = verify_engine(engine, model, calibration_images[:8], normalized=exported.normalized)
    assert np.isfinite(report.max_abs_diff) and report.min_cosine >= 0.9, report
