"""Training input pipeline throughput: ours (uint8, v2) against the classic PIL pipeline.

Run on demand: `python tests/benchmarks/pipeline_throughput.py [--images 2000 --workers 2]`.
Writes JPEGs of Market-1501-like crops (about 128×64, sizes varying) to a temporary folder, then
times, in the same run and with the same P×K batch sampler and `DataLoader` settings:

- ours: `decode_image` → v2 BoT augmentations on uint8 (resize 256×128 bicubic, flip,
  pad 10 + random crop, random erasing) → uint8 batches (the model normalises);
- baseline: PIL open → classic `transforms` (Resize bicubic, RandomHorizontalFlip, Pad,
  RandomCrop, ToTensor, Normalize, RandomErasing) → float32 batches.

It prints images/s for both (best of alternating epochs, so that background load hits both
alike), the ratio, and a single-thread per-stage breakdown (µs/image).
"""

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as classic

from reid_platform.config.input import InputConfig
from reid_platform.data.image_dataset import ImageDataset, decode_rgb, to_planar
from reid_platform.data.records import ImageRecord
from reid_platform.data.samplers import PKSampler
from reid_platform.data.transforms import build_train_transform

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def write_images(folder: Path, count: int, ids: int, seed: int = 0) -> list[ImageRecord]:
    """`count` JPEG crops of varying size around 128×64: smooth colour blobs plus noise."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        height, width = int(rng.integers(110, 160)), int(rng.integers(48, 80))
        coarse = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-20, 20, (height, width, 3))
        path = folder / f"{index:05d}.jpg"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        records.append(ImageRecord(path=path, pid=index % ids, camid=index % 6, dataset="bench"))
    return records


def our_transform() -> Callable[[Tensor], Tensor]:
    config = InputConfig.model_validate(
        {
            "flip": {"enabled": True},
            "padding": {"enabled": True, "size": 10},
            "random_erasing": {"enabled": True, "prob": 0.5},
        }
    )
    return build_train_transform(config)


def classic_transform() -> Callable[[Image.Image], Tensor]:
    return classic.Compose(
        [
            classic.Resize((256, 128), interpolation=classic.InterpolationMode.BICUBIC),
            classic.RandomHorizontalFlip(),
            classic.Pad(10),
            classic.RandomCrop((256, 128)),
            classic.ToTensor(),
            classic.Normalize([m / 255 for m in MEAN], [s / 255 for s in STD]),
            classic.RandomErasing(p=0.5),
        ]
    )


class ClassicDataset(Dataset[dict[str, Tensor | int]]):
    """The baseline: PIL decoding and float32 output, as most re-id code bases do it."""

    def __init__(self, records: list[ImageRecord]) -> None:
        self.records = records
        self.transform = classic_transform()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        record = self.records[index]
        with Image.open(record.path) as image:
            tensor = self.transform(image.convert("RGB"))
        return {"images": tensor, "pids": record.pid, "camids": record.camid, "index": index}


def make_loader(
    dataset: Dataset[dict[str, Tensor | int]], records: list[ImageRecord], args: argparse.Namespace
) -> tuple[PKSampler, DataLoader]:
    """The P×K sampler (P=16, K=4 for batch 64) and a loader with persistent workers."""
    sampler = PKSampler(
        pids=[r.pid for r in records], batch_size=args.batch_size, num_instances=4, seed=0
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
    )
    _drain(loader)  # starts the workers
    return sampler, loader


def epoch_throughput(sampler: PKSampler, loader: DataLoader, epoch: int) -> float:
    """Images/s of one epoch through the loader."""
    sampler.set_epoch(epoch)
    start = time.perf_counter()
    images = _drain(loader)
    return images / (time.perf_counter() - start)


def _drain(batches: Iterable[dict[str, Tensor]]) -> int:
    count = 0
    for batch in batches:
        count += batch["images"].shape[0]
    return count


def stage_breakdown(records: list[ImageRecord]) -> dict[str, float]:
    """Single-thread µs/image (best of 3) of decoding and of the transforms, as in a worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    paths = [r.path for r in records[:300]]
    ours, theirs = our_transform(), classic_transform()
    decoded = [decode_rgb(p) for p in paths]
    opened = [_pil_rgb(p) for p in paths]
    timings = {
        "ours: decode (decode_image)": _best_micros(decode_rgb, paths),
        "ours: uint8 transforms + planar": _best_micros(lambda x: to_planar(ours(x)), decoded),
        "baseline: PIL open + convert": _best_micros(_pil_rgb, paths),
        "baseline: classic transforms": _best_micros(theirs, opened),
    }
    torch.set_num_threads(threads)
    return timings


def _pil_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def _best_micros(function: Callable[[Any], object], items: list[Any], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--ids", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        records = write_images(Path(folder), args.images, args.ids)
        print(
            f"{args.images} JPEGs, {args.workers} workers, batch {args.batch_size}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        for name, micros in stage_breakdown(records).items():
            print(f"  {name:32s} {micros:8.1f} µs/image")
        ours = make_loader(ImageDataset(records, our_transform()), records, args)
        baseline = make_loader(ClassicDataset(records), records, args)
        # Alternate epochs so that both see the same background load; report the best of each.
        rates: dict[str, list[float]] = {"ours": [], "baseline": []}
        for epoch in range(1, args.epochs + 1):
            rates["ours"].append(epoch_throughput(*ours, epoch))
            rates["baseline"].append(epoch_throughput(*baseline, epoch))
    best_ours, best_baseline = max(rates["ours"]), max(rates["baseline"])
    print("per epoch, ours:     " + " ".join(f"{r:6.0f}" for r in rates["ours"]))
    print("per epoch, baseline: " + " ".join(f"{r:6.0f}" for r in rates["baseline"]))
    print(f"ours (decode_image + uint8 v2):     {best_ours:8.0f} images/s (best epoch)")
    print(f"baseline (PIL + classic, float32):  {best_baseline:8.0f} images/s (best epoch)")
    print(f"ratio ours / baseline:              {best_ours / best_baseline:8.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
