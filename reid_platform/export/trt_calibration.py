"""INT8 entropy calibration for TensorRT 10 (implicit quantisation; removed in TensorRT 11).

TensorRT pulls calibration batches through `get_batch`, which returns device pointers; the
batches live in one reused CUDA tensor (torch allocates it, so no pycuda is needed). The
calibrator class derives from `tensorrt.IInt8EntropyCalibrator2`, so it is made inside a
function that receives the lazily imported module.
"""

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from reid_platform.export.errors import ExportError


def entropy_calibrator(
    trt: ModuleType,
    images: np.ndarray,
    *,
    batch_size: int,
    cache_path: Path | None = None,
    device: str = "cuda",
) -> Any:
    """A `trt.IInt8EntropyCalibrator2` over `images` (n, 3, H, W) float32 0-255 RGB.

    Full batches of `batch_size` only (the remainder is dropped: TensorRT expects every batch
    at the calibration profile's shape). `cache_path`, when given, stores the calibration table
    and is read back instead of calibrating again.
    """
    if len(images) < batch_size:
        raise ExportError(
            f"INT8 calibration needs at least one batch of {batch_size} images, got {len(images)}"
        )
    host = np.ascontiguousarray(images, dtype=np.float32)
    base = trt.IInt8EntropyCalibrator2

    class EntropyCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.starts = list(range(0, len(host) - batch_size + 1, batch_size))
            self.device_batch = torch.empty(
                (batch_size, *host.shape[1:]), dtype=torch.float32, device=device
            )

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if not self.starts:
                return None
            start = self.starts.pop(0)
            self.device_batch.copy_(torch.from_numpy(host[start : start + batch_size]))
            torch.cuda.synchronize(self.device_batch.device)
            return [int(self.device_batch.data_ptr())] * len(names)

        def read_calibration_cache(self) -> bytes | None:
            if cache_path is not None and cache_path.is_file():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path is not None:
                cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()
