"""ONNX → serialised TensorRT engine with the Python API, for TensorRT 10 and 11.

One optimisation profile covers the dynamic batch (min / opt / max). Precision:

- TensorRT 10 (weakly typed builder): fp32 as parsed; fp16 sets `BuilderFlag.FP16`; int8 sets
  `INT8` (+ `FP16` for layers without an int8 kernel) and calibrates with an entropy
  calibrator on the given images, through a calibration profile at the calibration batch.
- TensorRT 11 (strongly typed only; the precision flags and implicit calibration are gone):
  the ONNX's own types decide. fp16 needs a reduced-precision ONNX — `export_onnx(...,
  precision="fp16")` writes one (fp16 weights and compute, float32 I/O); int8 needs an
  explicitly quantised (Q/DQ) ONNX, which this package does not produce.
- A reduced-precision or Q/DQ ONNX is built strongly typed on TensorRT 10 too.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import onnx

from reid_platform.export.embedder import ComputeDtype
from reid_platform.export.errors import ExportError
from reid_platform.export.trt_availability import require_tensorrt, tensorrt_major
from reid_platform.export.trt_calibration import entropy_calibrator

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "int8"]
DEFAULT_WORKSPACE_BYTES = 4 << 30
_REDUCED_TYPES = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}

TRT11_FP16_NEEDS = (
    "TensorRT 11 builds fp16 engines only from a reduced-precision ONNX (its networks are "
    "strongly typed and BuilderFlag.FP16 is gone): export one with "
    "export_onnx(..., precision='fp16') and build that file."
)
TRT11_INT8_NEEDS = (
    "TensorRT 11 int8 needs an explicitly quantised ONNX with Q/DQ nodes (e.g. from "
    "nvidia-modelopt's ONNX post-training quantisation on calibration images), which "
    "reid-platform does not produce yet; use TensorRT 10 (tensorrt-cu13<11) for calibrated "
    "int8, or fp16."
)


@dataclass(frozen=True, slots=True)
class BatchProfile:
    """Batch sizes of the optimisation profile: 1 ≤ min ≤ opt ≤ max."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ExportError(
                f"a TensorRT batch profile needs 1 <= min <= opt <= max, got "
                f"{self.min}, {self.opt}, {self.max}"
            )


@dataclass(frozen=True, slots=True)
class EngineBuild:
    """A built engine file and how it was built."""

    path: Path
    precision: Precision
    profile: BatchProfile
    tensorrt_version: str
    strongly_typed: bool
    seconds: float


def onnx_precision(onnx_path: Path) -> Precision:
    """What an ONNX file computes in: int8 (Q/DQ nodes), fp16 (fp16/bf16 weights) or fp32."""
    proto = onnx.load(str(onnx_path))
    if any(node.op_type in _QDQ_OPS for node in proto.graph.node):
        return "int8"
    if any(tensor.data_type in _REDUCED_TYPES for tensor in proto.graph.initializer):
        return "fp16"
    return "fp32"


def onnx_precision_for(precision: Precision, trt_major: int) -> ComputeDtype:
    """The `export_onnx` precision for a `precision` engine on TensorRT `trt_major`."""
    if trt_major >= 11 and precision == "int8":
        raise ExportError(TRT11_INT8_NEEDS)
    return "fp16" if trt_major >= 11 and precision == "fp16" else "fp32"


def build_engine(
    onnx_path: Path,
    out_path: Path,
    *,
    precision: Precision,
    profile: BatchProfile,
    calibration_images: np.ndarray | None = None,
    calibration_batch: int = 8,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> EngineBuild:
    """Build a TensorRT engine from `onnx_path` (an `export_onnx` file) into `out_path`.

    calibration_images: (n, 3, H, W) float32 0-255 RGB validation crops, needed for int8 on
        TensorRT 10 (n ≥ `calibration_batch`; a few hundred are typical).
    Raises `ExportError` with one sentence when TensorRT or a GPU is missing, the precision is
    not buildable on this TensorRT (see the module docstring), parsing or building fails.
    """
    trt = require_tensorrt()
    major = tensorrt_major(trt)
    typed_as = onnx_precision(onnx_path)
    strongly_typed = major >= 11 or typed_as != "fp32"
    _check_precision(precision, typed_as, major)
    started = time.perf_counter()
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(_network_flags(trt, strongly_typed))
    _parse(trt, network, trt_logger, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    name, chw = _input(network)
    config.add_optimization_profile(_profile(builder, name, chw, profile))
    if not strongly_typed:
        calibration = None
        if precision == "int8":
            calibration = _calibration(
                trt, builder, name, chw, calibration_images, calibration_batch
            )
        _set_weak_precision(trt, config, precision, calibration)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(
            f"TensorRT {trt.__version__} could not build a {precision} engine from {onnx_path} "
            "(its log above says why)"
        )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(bytes(serialized))
    seconds = time.perf_counter() - started
    logger.info("built %s TensorRT engine %s in %.1f s", precision, out_path, seconds)
    return EngineBuild(out_path, precision, profile, str(trt.__version__), strongly_typed, seconds)


def _check_precision(precision: Precision, typed_as: Precision, major: int) -> None:
    if typed_as != "fp32" and typed_as != precision:
        raise ExportError(
            f"the ONNX file is already {typed_as} (strongly typed), so it builds only a "
            f"{typed_as} engine, not {precision}"
        )
    if major >= 11 and typed_as == "fp32":
        if precision == "fp16":
            raise ExportError(TRT11_FP16_NEEDS)
        if precision == "int8":
            raise ExportError(TRT11_INT8_NEEDS)


def _network_flags(trt: ModuleType, strongly_typed: bool) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    # TensorRT 11 networks are always strongly typed; the flag may be gone there.
    return 1 << int(flag) if strongly_typed and flag is not None else 0


def _parse(trt: ModuleType, network: Any, trt_logger: Any, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(
            f"TensorRT cannot parse {onnx_path}: {errors[0] if errors else 'unknown error'}"
        )


def _input(network: Any) -> tuple[str, tuple[int, ...]]:
    """The single input's name and its (C, H, W)."""
    if network.num_inputs != 1:
        raise ExportError(f"an embedder has one input; the ONNX network has {network.num_inputs}")
    tensor = network.get_input(0)
    return str(tensor.name), tuple(int(d) for d in tuple(tensor.shape)[1:])


def _profile(builder: Any, name: str, chw: tuple[int, ...], batches: BatchProfile) -> Any:
    profile = builder.create_optimization_profile()
    profile.set_shape(name, (batches.min, *chw), (batches.opt, *chw), (batches.max, *chw))
    return profile


def _calibration(
    trt: ModuleType,
    builder: Any,
    name: str,
    chw: tuple[int, ...],
    images: np.ndarray | None,
    batch_size: int,
) -> tuple[Any, Any]:
    """TensorRT 10's entropy calibrator over `images` and its fixed-batch calibration profile."""
    if images is None:
        raise ExportError("an int8 TensorRT engine needs calibration images (validation crops)")
    # No calibration cache: a stale table from another model would be reused silently.
    calibrator = entropy_calibrator(trt, images, batch_size=batch_size)
    return calibrator, _profile(
        builder, name, chw, BatchProfile(batch_size, batch_size, batch_size)
    )


def _set_weak_precision(
    trt: ModuleType, config: Any, precision: Precision, calibration: tuple[Any, Any] | None
) -> None:
    """TensorRT 10's builder flags (int8 also allows fp16 for layers without int8 kernels)."""
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if calibration is not None:
        calibrator, profile = calibration
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
