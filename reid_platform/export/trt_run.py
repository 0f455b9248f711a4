"""Running a serialised TensorRT engine on the GPU (name-based I/O, `execute_async_v3`).

Device memory is torch's: inputs and outputs are CUDA tensors whose pointers the execution
context reads and writes, on torch's current stream.
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from reid_platform.export.embedder import input_contract
from reid_platform.export.errors import ExportError
from reid_platform.export.onnx_runtime import as_float32_images
from reid_platform.export.parity import (
    DEFAULT_BATCH_SIZES,
    ParityReport,
    check_parity,
    embed_in_batches,
    pytorch_embeddings,
)
from reid_platform.export.speed import (
    RunFactory,
    SpeedReport,
    measure_backends,
    pytorch_runner,
)
from reid_platform.export.trt_availability import require_tensorrt


class TensorRTEmbedder:
    """A deserialised engine with one input (B, 3, H, W) float32 and one output (B, D).

    `run(images)`: CUDA tensor in, CUDA float32 (B, D) out; `embedder(images)`: host arrays.
    The batch must lie within the engine's optimisation profile (`max_batch`).
    """

    def __init__(self, engine_path: Path, *, device: str = "cuda") -> None:
        trt = require_tensorrt()
        self.device = torch.device(device)
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise ExportError(
                f"TensorRT {trt.__version__} cannot load {engine_path}: it was built by another "
                "TensorRT version or for another GPU; build it again here"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ExportError(
                f"{engine_path} has inputs {inputs} and outputs {outputs}; expected one each"
            )
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.output_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(self.output_name))
        _min, _opt, max_shape = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.max_batch = int(max_shape[0])

    def run(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) 0-255 images (moved to the engine's GPU as float32) → (B, D) float32."""
        images = images.to(self.device, torch.float32).contiguous()
        if not 1 <= images.shape[0] <= self.max_batch:
            raise ExportError(
                f"batch {images.shape[0]} is outside the engine's profile (1 to {self.max_batch})"
            )
        if not self.context.set_input_shape(self.input_name, tuple(images.shape)):
            raise ExportError(f"the engine rejects input shape {tuple(images.shape)}")
        shape = tuple(self.context.get_tensor_shape(self.output_name))
        out = torch.empty(shape, dtype=self.output_dtype, device=self.device)
        self.context.set_tensor_address(self.input_name, images.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ExportError("TensorRT failed to enqueue the engine (its log above says why)")
        stream.synchronize()
        return out.float()

    def __call__(self, images: Tensor | np.ndarray) -> np.ndarray:
        host = torch.from_numpy(as_float32_images(images))
        return self.run(host).cpu().numpy()


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
    if dtype not in table:
        raise ExportError(f"the engine's output type {dtype} is neither float32 nor float16")
    return table[dtype]


def run_engine(
    engine_path: Path, images: Tensor | np.ndarray, *, batch_size: int = 32
) -> np.ndarray:
    """(n, 3, H, W) 0-255 images → (n, D) float32 embeddings from the engine at `engine_path`."""
    embedder = TensorRTEmbedder(engine_path)
    return embed_in_batches(embedder, images, min(batch_size, embedder.max_batch))


def verify_engine(
    engine_path: Path,
    model: nn.Module,
    images: Tensor | np.ndarray,
    *,
    normalized: bool,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
) -> ParityReport:
    """The engine vs eager float32 PyTorch on `images` (n, 3, H, W), at each batch size."""
    reference = pytorch_embeddings(model, images, normalize=normalized)
    return check_parity(TensorRTEmbedder(engine_path), reference, images, batch_sizes=batch_sizes)


def tensorrt_runner(embedder: TensorRTEmbedder, *, height: int, width: int) -> RunFactory:
    """Engine runs on random (batch, 3, height, width) images already on the GPU."""

    def prepare(batch: int) -> Callable[[], object]:
        images = torch.rand(batch, 3, height, width, device=embedder.device) * 255
        return lambda: embedder.run(images)

    return prepare


TENSORRT_GPU = "tensorrt"
PYTORCH_AMP_GPU = "pytorch-amp-fp16-cuda"


def measure_tensorrt_speed(
    model: nn.Module,
    engine_path: Path,
    *,
    normalized: bool,
    throughput_batch: int,
    latency_repeats: int = 50,
    throughput_repeats: int = 20,
    warmup: int = 5,
) -> SpeedReport:
    """The engine vs eager PyTorch under fp16 autocast, both on the GPU with inputs there."""
    engine = TensorRTEmbedder(engine_path)
    height, width = input_contract(model).height, input_contract(model).width
    speeds = measure_backends(
        {
            TENSORRT_GPU: tensorrt_runner(engine, height=height, width=width),
            PYTORCH_AMP_GPU: pytorch_runner(
                model, normalize=normalized, device=engine.device, amp_dtype=torch.float16
            ),
        },
        throughput_batch=min(throughput_batch, engine.max_batch),
        latency_repeats=latency_repeats,
        throughput_repeats=throughput_repeats,
        warmup=warmup,
    )
    return SpeedReport(
        exported_backend=TENSORRT_GPU,
        exported=speeds[TENSORRT_GPU],
        pytorch_backend=PYTORCH_AMP_GPU,
        pytorch=speeds[PYTORCH_AMP_GPU],
        device=torch.cuda.get_device_name(engine.device),
        threads=None,
        repeats=(latency_repeats, throughput_repeats),
    )
