"""Export config: which deployment formats every finished run produces, and how."""

from typing import Literal

from pydantic import Field

from reid_platform.config.base import Section


class ExportConfig(Section):
    """ONNX (always possible) and TensorRT (needs a GPU and the `tensorrt` package)."""

    formats: tuple[Literal["onnx", "tensorrt"], ...] = ("onnx",)
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    opset: int = Field(20, ge=13)
    normalize_output: bool = True
    max_batch: int = Field(64, ge=1)
    throughput_batch: int = Field(32, ge=1)
    calibration_images: int = Field(256, ge=1)
