"""ONNX export of the IBN, learnable-GeM and reduction-head variants: one checked, self-contained
file with a dynamic batch, the contract's names, and onnxruntime parity ≤ 1e-4 at batch 1 and 7."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import Tensor, nn

from reid_platform.config.export import ExportConfig
from reid_platform.config.input import InputConfig
from reid_platform.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    ExportError,
    OnnxExport,
    export_onnx,
    read_export_metadata,
    verify_onnx,
)
from reid_platform.export.trt_build import onnx_precision

ExportedVariant = Callable[[str], tuple[nn.Module, OnnxExport]]
VARIANTS = {"ibn": True, "gem_learnable": True, "reduction": False}
"""The conftest's variants → whether their export L2-normalises."""


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_export_is_one_checked_file_with_dynamic_batch(
    exported_variant: ExportedVariant, name: str, tiny_input: InputConfig
) -> None:
    model, exported = exported_variant(name)
    height, width = tiny_input.size_test
    assert model.training, "export must leave the caller's model in its own mode"
    assert sorted(p.name for p in exported.path.parent.iterdir()) == ["model.onnx"]
    proto = onnx.load(str(exported.path))
    onnx.checker.check_model(proto, full_check=True)
    assert [value.name for value in proto.graph.input] == [INPUT_NAME]
    assert [value.name for value in proto.graph.output] == [OUTPUT_NAME]
    input_dims, output_dims = _dims(proto.graph.input[0]), _dims(proto.graph.output[0])
    assert isinstance(input_dims[0], str) and input_dims[1:] == [3, height, width]
    assert isinstance(output_dims[0], str) and output_dims[1:] == [model.embedding_dim]
    opsets = {entry.domain: entry.version for entry in proto.opset_import}
    assert opsets[""] == ExportConfig().opset == exported.opset
    metadata = read_export_metadata(exported.path)
    assert metadata["normalized"] is VARIANTS[name]
    contract = metadata["input"]
    assert isinstance(contract, dict)
    assert (contract["name"], contract["height"], contract["width"]) == (INPUT_NAME, height, width)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_onnxruntime_matches_pytorch_at_batch_1_and_7(
    exported_variant: ExportedVariant, name: str, images: Tensor
) -> None:
    model, exported = exported_variant(name)
    report = verify_onnx(exported, model, images, batch_sizes=(1, 7))
    assert report.batch_sizes == (1, 7) and report.num_images == len(images)
    assert report.max_abs_diff <= 1e-4, report
    assert report.min_cosine >= 1 - 1e-6, report
    assert model.training


def test_parity_needs_enough_images_for_the_largest_batch(
    exported_variant: ExportedVariant, images: Tensor
) -> None:
    model, exported = exported_variant("ibn")
    with pytest.raises(ExportError, match="at least 7 images"):
        verify_onnx(exported, model, images[:5], batch_sizes=(1, 7))


def test_fp16_export_keeps_float32_io_for_tensorrt_11(
    tmp_path: Path, images: Tensor, build_variant: Callable[[str], nn.Module]
) -> None:
    model = build_variant("gem_learnable")
    exported = export_onnx(model, ExportConfig(), tmp_path / "model_fp16.onnx", precision="fp16")
    assert onnx_precision(exported.path) == "fp16" and exported.precision == "fp16"
    assert next(model.parameters()).dtype == torch.float32 and model.training  # untouched
    proto = onnx.load(str(exported.path))
    float32 = onnx.TensorProto.FLOAT
    assert proto.graph.input[0].type.tensor_type.elem_type == float32
    assert proto.graph.output[0].type.tensor_type.elem_type == float32
    session = onnxruntime.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {INPUT_NAME: images.numpy()})
    report = verify_onnx(exported, model, images, batch_sizes=(7,))
    assert np.isfinite(got).all() and report.min_cosine >= 0.999, report


def test_output_path_must_be_an_onnx_file(
    tmp_path: Path, build_variant: Callable[[str], nn.Module]
) -> None:
    with pytest.raises(ExportError, match=r"must end in \.onnx"):
        export_onnx(build_variant("ibn"), ExportConfig(), tmp_path / "model.bin")
