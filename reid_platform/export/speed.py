"""Latency and throughput of an exported model next to eager PyTorch, measured in one call.

Each backend is a `RunFactory`: given a batch size it prepares inputs on its device and returns
a call that runs one synchronous inference. The backends are timed in alternating blocks after
a warm-up (see `median_seconds`), so background load on a shared machine hits them alike:
latency is the median wall time of batch-1 calls (ms), throughput the batch size over the
median time of `throughput_batch` calls (images/s).
"""

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from reid_platform.export.embedder import ExportedEmbedder, eval_copy, input_contract
from reid_platform.export.onnx_export import OnnxExport
from reid_platform.export.onnx_runtime import OnnxRuntimeEmbedder

RunFactory = Callable[[int], Callable[[], object]]
"""batch size → a zero-argument call running one synchronous inference on prepared inputs."""

ONNXRUNTIME_CPU = "onnxruntime-cpu"
PYTORCH_CPU = "pytorch-eager-cpu"


@dataclass(frozen=True, slots=True)
class BackendSpeed:
    """latency_ms: median batch-1 time; throughput: images/s at `batch` (median batch time)."""

    latency_ms: float
    throughput: float
    batch: int


@dataclass(frozen=True, slots=True)
class SpeedReport:
    """The exported model's speed and eager PyTorch's, measured together on `device`.

    threads: intra-op threads given to both (CPU); repeats: timed calls per backend and batch.
    """

    exported_backend: str
    exported: BackendSpeed
    pytorch_backend: str
    pytorch: BackendSpeed
    device: str
    threads: int | None
    repeats: tuple[int, int]

    @property
    def latency_ratio(self) -> float:
        """PyTorch latency / exported latency (> 1: the export is faster)."""
        return self.pytorch.latency_ms / self.exported.latency_ms

    @property
    def throughput_ratio(self) -> float:
        """Exported throughput / PyTorch throughput (> 1: the export is faster)."""
        return self.exported.throughput / self.pytorch.throughput


def median_seconds(
    runs: Mapping[str, Callable[[], object]], *, warmup: int, repeats: int, rounds: int = 3
) -> dict[str, float]:
    """Median wall time of each call over `repeats` timed calls per backend.

    The calls are timed in `rounds` alternating blocks (backend a's block, b's block, a's, ...)
    so that a change in background load hits every backend alike, while inside a block each
    backend runs alone: thread pools that spin after a call (onnxruntime's, OpenMP's) then
    never steal cores from the other backend's timed calls. Each block starts with one
    untimed call, besides the `warmup` calls before the first round.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    rounds = max(1, min(rounds, repeats))
    for block in range(rounds):
        size = repeats // rounds + (1 if block < repeats % rounds else 0)
        for name, run in runs.items():
            run()
            for _ in range(size):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_backends(
    backends: Mapping[str, RunFactory],
    *,
    throughput_batch: int,
    latency_repeats: int = 20,
    throughput_repeats: int = 5,
    warmup: int = 2,
) -> dict[str, BackendSpeed]:
    """Batch-1 latency and `throughput_batch` throughput of every backend, timed together."""
    latency = median_seconds(
        {name: make(1) for name, make in backends.items()}, warmup=warmup, repeats=latency_repeats
    )
    batch_time = median_seconds(
        {name: make(throughput_batch) for name, make in backends.items()},
        warmup=warmup,
        repeats=throughput_repeats,
    )
    return {
        name: BackendSpeed(
            latency_ms=latency[name] * 1e3,
            throughput=throughput_batch / batch_time[name],
            batch=throughput_batch,
        )
        for name in backends
    }


def pytorch_runner(
    model: nn.Module,
    *,
    normalize: bool,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> RunFactory:
    """Eager `ExportedEmbedder` on an eval copy of `model` moved to `device` (AMP if asked)."""
    target = torch.device(device)
    contract = input_contract(model)
    embedder = ExportedEmbedder(eval_copy(model).to(target), normalize=normalize)

    def prepare(batch: int) -> Callable[[], object]:
        images = torch.rand(batch, 3, contract.height, contract.width, device=target) * 255

        def run() -> object:
            with (
                torch.inference_mode(),
                torch.autocast(target.type, dtype=amp_dtype, enabled=amp_dtype is not None),
            ):
                out = embedder(images)
            if target.type == "cuda":
                torch.cuda.synchronize(target)
            return out

        return run

    return prepare


def onnxruntime_runner(runtime: OnnxRuntimeEmbedder, *, height: int, width: int) -> RunFactory:
    """onnxruntime session calls on random float32 (batch, 3, height, width) host images."""

    def prepare(batch: int) -> Callable[[], object]:
        images = np.random.default_rng(0).uniform(0, 255, (batch, 3, height, width))
        host = images.astype(np.float32)
        return lambda: runtime(host)

    return prepare


def measure_speed(
    model: nn.Module,
    exported: OnnxExport,
    *,
    throughput_batch: int,
    threads: int | None = None,
    latency_repeats: int = 20,
    throughput_repeats: int = 5,
    warmup: int = 2,
) -> SpeedReport:
    """onnxruntime-CPU on `exported` vs eager PyTorch-CPU on `model`, same threads, one call.

    threads: intra-op threads for both (None: torch's current setting, given to onnxruntime too).
    """
    threads = threads if threads is not None else torch.get_num_threads()
    contract = exported.input
    runtime = OnnxRuntimeEmbedder(exported.path, threads=threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        speeds = measure_backends(
            {
                ONNXRUNTIME_CPU: onnxruntime_runner(
                    runtime, height=contract.height, width=contract.width
                ),
                PYTORCH_CPU: pytorch_runner(model, normalize=exported.normalized, device="cpu"),
            },
            throughput_batch=throughput_batch,
            latency_repeats=latency_repeats,
            throughput_repeats=throughput_repeats,
            warmup=warmup,
        )
    finally:
        torch.set_num_threads(previous)
    return SpeedReport(
        exported_backend=ONNXRUNTIME_CPU,
        exported=speeds[ONNXRUNTIME_CPU],
        pytorch_backend=PYTORCH_CPU,
        pytorch=speeds[PYTORCH_CPU],
        device="cpu",
        threads=threads,
        repeats=(latency_repeats, throughput_repeats),
    )
