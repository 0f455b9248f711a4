"""`reid import-fastreid CKPT.pth --config CONFIG [key=value ...] --out model.pt`."""

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from reid_platform.config import load_config
from reid_platform.modeling.fastreid_import import (
    ImportReport,
    KeyAccounting,
    PartialLoadError,
    import_fastreid_checkpoint,
    save_imported_model,
)

_GROUP_DEPTH = 2
"""Placed keys whose name is unchanged are summarised by their first two name parts."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "import-fastreid",
        parents=[common],
        help="convert a FastReID checkpoint into our model file, reporting every unplaced key",
    )
    command.add_argument(
        "checkpoint", type=Path, help="FastReID .pth: a state dict or {'model': ...}"
    )
    command.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides")
    command.add_argument(
        "--config",
        required=True,
        nargs="+",
        metavar=("CONFIG", "key=value"),
        help="experiment YAML describing the checkpoint's model, then dotted overrides",
    )
    command.add_argument("--out", required=True, type=Path, help="model file to write")
    command.add_argument("--keys", action="store_true", help="list every placed key")
    command.set_defaults(handler=import_fastreid_command)


def _group(key: str) -> str:
    return ".".join(key.split(".")[:_GROUP_DEPTH])


def _placed_table(accounting: KeyAccounting, every_key: bool) -> Table:
    table = Table(title="placed FastReID keys", title_justify="left")
    for column in ("FastReID key", "our key", "shape / count"):
        table.add_column(column)
    unchanged: Counter[str] = Counter()
    for placed in accounting.placed:
        if placed.source == placed.target and not every_key:
            unchanged[_group(placed.source)] += 1
        else:
            table.add_row(placed.source, placed.target, str(placed.shape))
    for group, count in unchanged.items():
        table.add_row(f"{group}.*", "same names", f"{count} key{'s' if count > 1 else ''}")
    for key in accounting.validated:
        table.add_row(key, "validated against input.mean/std", "not loaded")
    return table


def _gaps_table(accounting: KeyAccounting) -> Table:
    table = Table(title="keys not placed", title_justify="left")
    for column in ("key", "side", "why"):
        table.add_column(column)
    for key in accounting.unplaced:
        table.add_row(key.source, f"FastReID {key.shape}", key.reason)
    for wrong in accounting.mismatched:
        reason = f"our {wrong.target!r} has shape {wrong.expected}"
        table.add_row(wrong.source, f"FastReID {wrong.shape}", reason)
    for missing in accounting.missing:
        table.add_row(missing, "ours", "no FastReID tensor fills it")
    return table


def _summary(report: ImportReport, out: Path) -> Table:
    table = Table(show_header=False, title="FastReID import", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    accounting = report.accounting
    rows = {
        "checkpoint": report.source,
        "architecture / layout": f"{report.architecture.value} / {report.layout.value}",
        "classes": str(report.num_classes) if report.num_classes else "none (inference only)",
        "placed": f"{len(accounting.placed)} keys",
        "unplaced / missing": f"{len(accounting.unplaced)} / {len(accounting.missing)}",
        "embedding": f"{report.model.embedding_dim}-d",
        "written": str(out),
    }
    for name, value in rows.items():
        table.add_row(name, value)
    return table


def import_fastreid_command(args: argparse.Namespace) -> int:
    config_path, *config_overrides = args.config
    config = load_config(config_path, [*args.overrides, *config_overrides])
    console = Console(soft_wrap=True)
    try:
        report = import_fastreid_checkpoint(args.checkpoint, config)
    except PartialLoadError as refusal:
        console.print(_gaps_table(refusal.accounting))
        raise
    out = save_imported_model(report, args.out)
    console.print(_placed_table(report.accounting, args.keys))
    if report.accounting.missing:
        console.print(_gaps_table(report.accounting))
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    if report.other_entries:
        console.print(f"not read: {', '.join(report.other_entries)}", highlight=False)
    console.print(_summary(report, out))
    return 0
