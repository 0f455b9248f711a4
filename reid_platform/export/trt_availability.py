"""Whether TensorRT can run here: the `tensorrt` package and a CUDA GPU, said in one sentence.

`import tensorrt` happens only inside `require_tensorrt`, so the export package imports (and
ONNX export works) on machines without TensorRT or a GPU.
"""

import importlib
import importlib.util
from types import ModuleType

import torch

from reid_platform.export.errors import ExportError

MIN_TENSORRT_MAJOR = 10
INSTALL_HINT = "pip install 'reid-platform[tensorrt]'"


def describe_unavailability(
    *, has_package: bool, has_gpu: bool, import_error: str | None = None
) -> str | None:
    """The one sentence saying what is missing for TensorRT, or None when nothing is."""
    if not has_package and not has_gpu:
        return (
            "TensorRT export needs the tensorrt Python package and a CUDA GPU, and this machine "
            f"has neither ({INSTALL_HINT} on a GPU machine)."
        )
    if not has_package:
        return (
            "TensorRT export needs the tensorrt Python package, which is not installed "
            f"({INSTALL_HINT})."
        )
    if not has_gpu:
        return "TensorRT export needs a CUDA GPU, and torch sees none on this machine."
    if import_error is not None:
        return (
            "TensorRT export cannot use the installed tensorrt package: importing it failed "
            f"({import_error})."
        )
    return None


def tensorrt_unavailable_reason() -> str | None:
    """Why TensorRT cannot build or run engines here (one sentence), or None when it can."""
    has_package = importlib.util.find_spec("tensorrt") is not None
    has_gpu = torch.cuda.is_available()
    import_error = None
    if has_package and has_gpu:
        try:
            importlib.import_module("tensorrt")
        except Exception as error:  # a broken wheel raises ImportError or OSError alike
            import_error = f"{type(error).__name__}: {error}"
    return describe_unavailability(
        has_package=has_package, has_gpu=has_gpu, import_error=import_error
    )


def require_tensorrt() -> ModuleType:
    """The imported `tensorrt` module (10 or newer), or `ExportError` saying what is missing."""
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise ExportError(reason)
    trt = importlib.import_module("tensorrt")
    if tensorrt_major(trt) < MIN_TENSORRT_MAJOR:
        raise ExportError(
            f"TensorRT {trt.__version__} is installed but export needs TensorRT "
            f"{MIN_TENSORRT_MAJOR} or newer ({INSTALL_HINT})."
        )
    return trt


def tensorrt_major(trt: ModuleType) -> int:
    """The major version of an imported `tensorrt` module (10, 11, ...)."""
    return int(str(trt.__version__).split(".")[0])
