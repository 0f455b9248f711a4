"""What an exported artifact is called: one rule for every format and precision.

fp32 has no suffix, every other precision carries it: `model.onnx`, `model.fp16.onnx`,
`model.engine`, `model.fp16.engine`, `model.int8.engine`. The same names are used in a
checkpoint's `export/` folder, a run's `export/` artifacts and the folder `reid fetch` writes.
"""

from typing import Literal

from reid_platform.export.errors import ExportError

Format = Literal["onnx", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]

FORMATS: tuple[Format, ...] = ("onnx", "tensorrt")
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "int8")
_SUFFIXES: dict[Format, str] = {"onnx": ".onnx", "tensorrt": ".engine"}

ONNX_INT8_UNSUPPORTED = (
    "int8 applies to TensorRT engines only; export ONNX as fp32 or fp16, or ask for a "
    "tensorrt int8 engine (calibrated on validation images)"
)


def artifact_name(format: Format, precision: Precision) -> str:
    """The file name of a `format` export at `precision` (see the module docstring).

    Raises `ExportError` for ONNX int8, which is not exported (TensorRT calibrates int8 itself).
    """
    if format == "onnx" and precision == "int8":
        raise ExportError(ONNX_INT8_UNSUPPORTED)
    if format not in _SUFFIXES or precision not in PRECISIONS:
        raise ExportError(
            f"no export {format} {precision}: formats are {', '.join(FORMATS)}, precisions "
            f"{', '.join(PRECISIONS)}"
        )
    infix = "" if precision == "fp32" else f".{precision}"
    return f"model{infix}{_SUFFIXES[format]}"
