"""`reid data synth | info | check`: make the synthetic benchmark and inspect datasets as loaded."""

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from reid_platform.config import load_config
from reid_platform.config.data import DatasetConfig, SyntheticOptions
from reid_platform.config.loading import apply_override, validate_section
from reid_platform.data.records import Split

SPLIT_NAMES = ("train", "val", "query", "gallery")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    data = commands.add_parser("data", help="datasets: synthesise, inspect, check")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")

    synth = actions.add_parser(
        "synth", parents=[common], help="write the synthetic benchmark in Market-1501 layout"
    )
    defaults = SyntheticOptions()
    synth.add_argument("--out", required=True, type=Path, help="folder to write (must be empty)")
    synth.add_argument("--ids", type=int, default=defaults.ids)
    synth.add_argument("--cams", type=int, default=defaults.cams)
    synth.add_argument("--images-per-id", type=int, default=defaults.images_per_id)
    synth.add_argument("--height", type=int, default=defaults.height)
    synth.add_argument("--width", type=int, default=defaults.width)
    synth.add_argument("--seed", type=int, default=defaults.seed)
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    synth.set_defaults(handler=synth_command)

    info = actions.add_parser(
        "info", parents=[common], help="ids, cameras and images per split as the loader sees them"
    )
    info.add_argument("--dataset", required=True, help="dataset registry name, e.g. market1501")
    info.add_argument("--root", required=True, help="dataset folder")
    info.add_argument("overrides", nargs="*", metavar="key=value", help="dataset options")
    size = info.add_mutually_exclusive_group()
    size.add_argument("--val-ids", type=int, default=None, help="held-out validation identities")
    size.add_argument("--val-fraction", type=float, default=None, help="held-out id fraction")
    info.add_argument("--val-seed", type=int, default=0)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=info_command)

    check = actions.add_parser(
        "check", parents=[common], help="build a config's data pipeline and run its loaders"
    )
    check.add_argument("config", help="experiment YAML")
    check.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides")
    check.add_argument(
        "--batches", type=int, default=None, help="batches to load (default: 1 epoch)"
    )
    check.set_defaults(handler=check_command)


def synth_command(args: argparse.Namespace) -> int:
    from reid_platform.data.synthetic import generate_synthetic_benchmark

    options = validate_section(
        SyntheticOptions,
        {
            "ids": args.ids,
            "cams": args.cams,
            "images_per_id": args.images_per_id,
            "height": args.height,
            "width": args.width,
            "seed": args.seed,
        },
        "reid data synth",
    )
    with Console(stderr=True).status(f"drawing {options.ids} identities into {args.out} ..."):
        summary = generate_synthetic_benchmark(
            out=args.out, workers=args.workers, **options.model_dump()
        )
    Console(soft_wrap=True).print(
        f"wrote {summary.images} images to {args.out} in {summary.seconds:.1f} s: "
        f"train {summary.train_ids} ids / {summary.train_images} images, "
        f"test {summary.test_ids} ids / {summary.query_images} query + "
        f"{summary.gallery_images} gallery images, {summary.distractor_images} distractors "
        f"(pid 0), {summary.junk_images} junk (pid -1)",
        highlight=False,
    )
    return 0


def _summaries(train: Split, val: tuple[Split, Split], query: Split, gallery: Split) -> dict:
    val_records = (*val[0].records, *val[1].records)
    val_split = Split(name="val", records=val_records)
    return {
        "train": train.summary(),
        "val": val_split.summary(),
        "query": query.summary(),
        "gallery": gallery.summary(),
    }


def _render(title: str, counts: dict[str, dict[str, int]], notes: tuple[str, ...]) -> None:
    table = Table(title=title)
    for column in ("split", "ids", "cams", "images"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name in SPLIT_NAMES:
        row = counts[name]
        table.add_row(name, str(row["ids"]), str(row["cams"]), str(row["images"]))
    console = Console(soft_wrap=True)
    console.print(table)
    for note in notes:
        console.print(f"• {note}", highlight=False)


def info_command(args: argparse.Namespace) -> int:
    from reid_platform.data.datasets.build import build_dataset
    from reid_platform.data.splits import carve_validation, combine_training_records

    raw: dict[str, Any] = {"name": args.dataset, "root": args.root}
    for override in args.overrides:
        raw = apply_override(raw, override)
    dataset = validate_section(DatasetConfig, raw, f"dataset {args.dataset!r}")
    splits = build_dataset(dataset)
    carved = carve_validation(
        combine_training_records([splits]),
        num_ids=args.val_ids,
        fraction=args.val_fraction,
        seed=args.val_seed,
    )
    counts = _summaries(
        carved.train, (carved.val_query, carved.val_gallery), splits.query, splits.gallery
    )
    if args.json:
        print(json.dumps(counts))  # noqa: T201 - the command's machine-readable output
    else:
        _render(f"{args.dataset} at {args.root}", counts, splits.notes + carved.notes)
    return 0


def check_command(args: argparse.Namespace) -> int:
    from reid_platform.data.build import build_data, build_test_loader, build_train_loader

    config = load_config(args.config, args.overrides)
    data = build_data(config.data)
    test = data.test[0]
    counts = _summaries(data.train, (data.val_query, data.val_gallery), test.query, test.gallery)
    _render(f"{args.config}: test set {test.name}", counts, ())  # build_data logged the notes
    loader = build_train_loader(config.data, config.input, data.train, seed=config.seed)
    loader.batch_sampler.set_epoch(0)  # type: ignore[union-attr]
    total = len(loader) if args.batches is None else min(args.batches, len(loader))
    images = 0
    started = time.perf_counter()
    with Progress(transient=True) as progress:
        task = progress.add_task("training batches", total=total)
        for step, batch in enumerate(loader):
            if step >= total:
                break
            images += batch["images"].shape[0]
            progress.advance(task)
    seconds = time.perf_counter() - started
    shape = tuple(batch["images"].shape)
    test_batch = next(iter(build_test_loader(config.data, config.input, test.query.records)))
    console = Console(soft_wrap=True)
    console.print(
        f"train loader: {total} batches of {shape} {batch['images'].dtype}, "
        f"{images / seconds:.0f} images/s; test loader batch {tuple(test_batch['images'].shape)}",
        highlight=False,
    )
    return 0
