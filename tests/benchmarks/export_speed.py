"""Export speed: onnxruntime-CPU vs eager PyTorch (and, with --gpu, TensorRT FP16 vs PyTorch AMP).

Run on demand: `python tests/benchmarks/export_speed.py [--gpu] [--size 256 128]`.
For the quickstart model (experiments/quickstart.yaml: ResNet-18, BNNeck) and BoT-R50
(experiments/bot_r50.yaml: ResNet-50, last stride 1, BNNeck), randomly initialised and both at
`--size` (default 256×128), each model is exported with `export_onnx` (the config's export
section: opset, L2-normalised output), checked for parity at batch 1 and 7, then timed with
`measure_speed`: batch-1 latency (median) and throughput at `export.throughput_batch`, the
two backends timed in alternating blocks with the same intra-op threads. Prints the figures,
the ratios and the machine's load average before and after (the development machines are
shared 2-core boxes).

`--gpu` adds, where TensorRT and a CUDA GPU are present, a TensorRT FP16 engine (TensorRT 10:
builder flag; 11: an fp16 ONNX) against eager PyTorch under fp16 autocast, both on the GPU
with inputs already there; otherwise it prints the one-sentence reason.
"""

import argparse
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from reid_platform.config import ReidConfig
from reid_platform.config.loading import load_config
from reid_platform.export import (
    BackendSpeed,
    BatchProfile,
    OnnxExport,
    build_engine,
    export_onnx,
    measure_speed,
    measure_tensorrt_speed,
    tensorrt_unavailable_reason,
    verify_engine,
    verify_onnx,
)
from reid_platform.export.trt_availability import require_tensorrt, tensorrt_major
from reid_platform.export.trt_build import onnx_precision_for
from reid_platform.modeling import build_model

EXPERIMENTS = {
    "quickstart (R18)": Path("experiments/quickstart.yaml"),
    "BoT-R50": Path("experiments/bot_r50.yaml"),
}
NUM_CLASSES = 751


def load_model(path: Path, size: tuple[int, int]) -> tuple[nn.Module, ReidConfig]:
    overrides = [
        f"input.size_test=[{size[0]},{size[1]}]",
        "model.backbone.pretrained.cache_dir=null",
    ]
    config = load_config(path, overrides)
    torch.manual_seed(0)
    return build_model(config.model, config.input, num_classes=NUM_CLASSES), config


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def row(backend: str, speed: BackendSpeed) -> str:
    return (
        f"  {backend:<20} latency {speed.latency_ms:8.2f} ms   "
        f"{speed.throughput:8.1f} images/s @ {speed.batch}"
    )


def cpu_figures(
    name: str, model: nn.Module, exported: OnnxExport, batch: int, repeats: int
) -> None:
    images = torch.randint(0, 256, (8, 3, exported.input.height, exported.input.width)).float()
    parity = verify_onnx(exported, model, images, batch_sizes=(1, 7))
    report = measure_speed(
        model, exported, throughput_batch=batch, latency_repeats=repeats, throughput_repeats=5
    )
    print(
        f"{name}: export {exported.seconds:.1f} s, parity max abs {parity.max_abs_diff:.1e}, "
        f"min cosine {parity.min_cosine:.7f}; {report.threads} threads"
    )
    for backend, speed in (
        (report.exported_backend, report.exported),
        (report.pytorch_backend, report.pytorch),
    ):
        print(row(backend, speed))
    print(
        f"  onnxruntime / pytorch: latency x{report.latency_ratio:.2f} faster, "
        f"throughput x{report.throughput_ratio:.2f}"
    )


def gpu_figures(model: nn.Module, config: ReidConfig, folder: Path, repeats: int) -> None:
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        print(f"  GPU: skipped: {reason}")
        return
    major = tensorrt_major(require_tensorrt())
    onnx_dtype = onnx_precision_for("fp16", major)
    source = export_onnx(
        model, config.export, folder / f"fp16_source_{onnx_dtype}.onnx", precision=onnx_dtype
    )
    batch = config.export.throughput_batch
    profile = BatchProfile(1, batch, max(batch, config.export.max_batch))
    build = build_engine(
        source.path, folder / "model_fp16.engine", precision="fp16", profile=profile
    )
    images = torch.randint(0, 256, (8, 3, source.input.height, source.input.width)).float()
    parity = verify_engine(build.path, model.cuda(), images, normalized=source.normalized)
    report = measure_tensorrt_speed(
        model, build.path, normalized=source.normalized, throughput_batch=batch,
        latency_repeats=repeats,
    )  # fmt: skip
    print(
        f"  GPU {report.device}: TensorRT {build.tensorrt_version} build {build.seconds:.1f} s, "
        f"fp16 parity max abs {parity.max_abs_diff:.1e}, min cosine {parity.min_cosine:.5f}"
    )
    print(row(report.exported_backend, report.exported))
    print(row(report.pytorch_backend, report.pytorch))
    print(
        f"  tensorrt / pytorch-amp: latency x{report.latency_ratio:.2f} faster, "
        f"throughput x{report.throughput_ratio:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=20, help="timed batch-1 calls per backend")
    parser.add_argument("--gpu", action="store_true", help="also TensorRT FP16 vs PyTorch AMP")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in EXPERIMENTS.items():
            model, config = load_model(path, tuple(args.size))
            folder = Path(tmp) / path.stem
            exported = export_onnx(model, config.export, folder / "model.onnx")
            cpu_figures(name, model, exported, config.export.throughput_batch, args.repeats)
            if args.gpu:
                gpu_figures(model, config, folder, args.repeats)
            print(f"  ({load()})")


if __name__ == "__main__":
    main()
