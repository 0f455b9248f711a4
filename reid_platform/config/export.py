"""Export config: which deployment formats every finished run produces, and how."""

from typing import Literal, Self

from pydantic import Field, model_validator

from reid_platform.config.base import Float, Section


class ExportConfig(Section):
    """ONNX (always possible) and TensorRT (needs a GPU and the `tensorrt` package).

    formats: exported at the end of every training run, in this order (`[]`: none); the first
        one exported with a speed measurement gives the run's `export/latency_ms` and
        `export/images_per_sec`.
    precision: fp32, fp16, or int8 (TensorRT only, calibrated on validation images).
    parity_tolerance: max abs difference allowed between an fp32 ONNX export (onnxruntime) and
        eager PyTorch. fp16 and int8 exports and TensorRT engines are judged by the worst cosine
        similarity of their embeddings instead (`export.pipeline.MIN_COSINE`).
    validation_images: at most this many validation images (whole identities) serve parity,
        the exported model's validation mAP and INT8 calibration; never fewer than 7 (the
        parity batch), the first identities kept whole past the limit when needed.
    calibration_images: at most this many of those calibrate an int8 engine.
    """

    formats: tuple[Literal["onnx", "tensorrt"], ...] = ("onnx",)
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    opset: int = Field(20, ge=13)
    normalize_output: bool = True
    max_batch: int = Field(64, ge=1)
    throughput_batch: int = Field(32, ge=1)
    calibration_images: int = Field(256, ge=1)
    parity_tolerance: Float = Field(1e-4, gt=0)
    validation_images: int = Field(512, ge=8)

    @model_validator(mode="after")
    def _formats_fit_precision(self) -> Self:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats lists a format more than once: {list(self.formats)}")
        if self.precision == "int8" and "onnx" in self.formats:
            raise ValueError(
                "precision int8 applies to TensorRT engines only; export onnx as fp32 or fp16, "
                "or list only tensorrt in formats"
            )
        return self
