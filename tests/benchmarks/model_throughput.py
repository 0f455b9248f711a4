"""Training-step throughput of BoT-R50: eager vs channels_last vs torch.compile (and AMP on GPU).

Run on demand: `python tests/benchmarks/model_throughput.py [--batch 16 --iters 3 --rounds 3]`.
Builds the BoT model through `build_model` (ResNet-50, last stride 1, average pooling, BNNeck,
linear classifier over 751 identities, Market-1501's training set) at 256×128, and times
forward + backward (cross-entropy on the logits via `torch.nn.functional.cross_entropy`, no
optimizer step) on uint8 batches, as the data pipeline delivers them. Every variant starts from
the same weights and runs in the same process:

- eager: contiguous (NCHW) tensors;
- channels_last: model and input in channels_last;
- compile: `torch.compile` (inductor) of the eager model; compilation is timed apart;
- on a CUDA device also amp_bf16 / amp_fp16: channels_last under `torch.autocast` (fp16 with a
  gradient scaler). On CPU they are skipped with a notice.

The variants are prepared first (first step, including compilation, timed apart; warm-up
steps), then timed in alternating rounds of `--iters` steps each, so that background load hits
them alike; the best round of each is reported. Prints images/s per variant and the ratio to
eager.
"""

import argparse
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn.functional import cross_entropy

from reid_platform.config.input import InputConfig
from reid_platform.config.model import ModelConfig
from reid_platform.modeling import build_model

NUM_CLASSES = 751
HEIGHT, WIDTH = 256, 128


def bot_r50() -> nn.Module:
    config = ModelConfig.model_validate(
        {
            "backbone": {"name": "resnet50", "last_stride": 1},
            "pooling": {"kind": "avg"},
            "neck": {"kind": "bn", "embedding": "before"},
            "classifier": {"kind": "linear"},
        }
    )
    torch.manual_seed(0)
    return build_model(config, InputConfig(), num_classes=NUM_CLASSES)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(
    model: nn.Module, amp_dtype: torch.dtype | None, device: torch.device
) -> Callable[[Tensor, Tensor], None]:
    """One forward + backward on (images, targets); gradients are dropped after each step."""
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None

    def step(images: Tensor, targets: Tensor) -> None:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=bool(amp_dtype)):
            logits = model(images, targets).logits[0]
            loss = cross_entropy(logits.float(), targets)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        model.zero_grad(set_to_none=True)

    return step


@dataclass
class Variant:
    name: str
    step: Callable[[Tensor, Tensor], None]
    images: Tensor
    first_step_seconds: float = 0.0
    seconds_per_step: float = float("inf")


def timed(variant: Variant, targets: Tensor, steps: int, device: torch.device) -> float:
    """Seconds per step of `variant` over `steps` steps."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        variant.step(variant.images, targets)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def prepare(variant: Variant, targets: Tensor, *, warmup: int, device: torch.device) -> None:
    """First step (compilation for the compiled variant) timed apart, then warm-up steps."""
    variant.first_step_seconds = timed(variant, targets, 1, device)
    if warmup:
        timed(variant, targets, warmup, device)
    print(f"{variant.name:>14}: ready (first step {variant.first_step_seconds:6.1f} s)", flush=True)


def variants(
    base: nn.Module, device: torch.device
) -> list[tuple[str, nn.Module, torch.dtype | None, bool]]:
    """(name, model, autocast dtype, channels_last input) for every variant this device runs."""
    eager = copy.deepcopy(base).to(device).train()
    channels_last = copy.deepcopy(base).to(device).train().to(memory_format=torch.channels_last)
    compiled = cast(nn.Module, torch.compile(copy.deepcopy(base).to(device).train()))
    chosen: list[tuple[str, nn.Module, torch.dtype | None, bool]] = [
        ("eager", eager, None, False),
        ("channels_last", channels_last, None, True),
        ("compile", compiled, None, False),
    ]
    if device.type == "cuda":
        for dtype, label in ((torch.bfloat16, "amp_bf16"), (torch.float16, "amp_fp16")):
            model = copy.deepcopy(base).to(device).train().to(memory_format=torch.channels_last)
            chosen.append((label, model, dtype, True))
    else:
        print("AMP bf16/fp16 variants need a CUDA device; skipped on CPU.")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=3, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print(
        f"BoT-R50 (751 classes) at {HEIGHT}×{WIDTH}, batch {args.batch}, forward+backward, "
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, HEIGHT, WIDTH), dtype=torch.uint8)
    targets = torch.randint(0, NUM_CLASSES, (args.batch,), generator=generator).to(device)
    base = bot_r50()
    prepared = []
    for name, model, amp_dtype, channels_last in variants(base, device):
        batch = images.to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        variant = Variant(name, make_step(model, amp_dtype, device), batch)
        prepare(variant, targets, warmup=args.warmup, device=device)
        prepared.append(variant)
    for _ in range(args.rounds):
        for variant in prepared:
            seconds = timed(variant, targets, args.iters, device)
            variant.seconds_per_step = min(variant.seconds_per_step, seconds)
    eager = args.batch / prepared[0].seconds_per_step
    for variant in prepared:
        rate = args.batch / variant.seconds_per_step
        milliseconds = variant.seconds_per_step * 1000
        print(
            f"{variant.name:>14}: {rate:8.2f} images/s  ({milliseconds:8.1f} ms/step, best of "
            f"{args.rounds} rounds × {args.iters} steps)  {rate / eager:5.2f}× eager"
        )


if __name__ == "__main__":
    main()
