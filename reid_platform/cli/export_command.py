"""`reid export --run RUN_ID --format onnx|tensorrt [--precision P] [--register NAME]`."""

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from rich.console import Console
from rich.table import Table

from reid_platform.cli.table_output import print_table
from reid_platform.errors import ReidError
from reid_platform.export.artifact_names import Format, Precision, artifact_name
from reid_platform.export.manifest import ExportManifest

if TYPE_CHECKING:
    from reid_platform.workflows.export_run import RunExport


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "export",
        parents=[common],
        help="export a finished run's model (ONNX or TensorRT), verify it and log it to the run",
    )
    command.add_argument("--run", required=True, metavar="RUN_ID", help="a FINISHED MLflow run")
    command.add_argument("--format", required=True, choices=get_args(Format))
    command.add_argument(
        "--precision",
        choices=get_args(Precision),
        help="default: export.precision of the run's config (int8: TensorRT only)",
    )
    command.add_argument(
        "--register", metavar="NAME", help="also register the export as a model version of NAME"
    )
    command.add_argument(
        "--alias",
        action="extend",
        nargs="+",
        default=[],
        metavar="ALIAS",
        help="aliases to set on the registered version (needs --register)",
    )
    command.set_defaults(handler=export_command)


def _percent(value: float) -> str:
    return f"{100.0 * value:.2f}%"


def export_table(entry: ExportManifest, registered: str | None) -> Table:
    """The exported artifact and what verifying it measured (one row per fact)."""
    table = Table(title=f"{entry.format} {entry.precision} export", title_justify="left")
    table.add_column("")
    table.add_column("value")
    table.add_row("artifact", f"export/{entry.artifact} (sha256 {entry.sha256[:12]}…)")
    parity = entry.parity
    table.add_row(
        "parity max abs",
        "not measured"
        if parity is None
        else f"{parity.max_abs_diff:.2e} (min cosine {parity.min_cosine:.6f})",
    )
    maps = entry.validation_map
    table.add_row(
        "val mAP exported / PyTorch",
        "not measured (no validation split)"
        if maps is None
        else f"{_percent(maps.exported_map)} / {_percent(maps.pytorch_map)}",
    )
    speed = entry.speed
    if speed is None:
        table.add_row("speed", "not measured")
    else:
        exported, pytorch = speed.exported, speed.pytorch
        table.add_row(
            "latency, batch 1",
            f"{exported.latency_ms:.2f} ms {speed.exported_backend} "
            f"(PyTorch {pytorch.latency_ms:.2f} ms)",
        )
        table.add_row(
            f"throughput, batch {exported.batch}",
            f"{exported.throughput:.0f} images/s (PyTorch {pytorch.throughput:.0f})",
        )
    if registered is not None:
        table.add_row("registered", registered)
    return table


def _registered(args: argparse.Namespace, made: "RunExport") -> str | None:
    if args.register is None:
        return None
    from reid_platform.tracking.registry import register_export  # mlflow: import late

    version = register_export(
        args.tracking_uri,
        args.run,
        name=args.register,
        format=made.entry.format,
        precision=made.entry.precision,
        aliases=args.alias,
    )
    aliases = f", aliases {', '.join(args.alias)}" if args.alias else ""
    return f"{args.register} version {version}{aliases}"


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad input before anything is downloaded, exported or tagged."""
    if args.alias and args.register is None:
        raise ReidError("--alias needs --register NAME: an alias names a registered version")
    if args.precision is not None:
        artifact_name(args.format, args.precision)  # ONNX int8: its one sentence
    if args.alias:
        from reid_platform.tracking.registry import check_aliases  # mlflow: import late

        check_aliases(args.alias)


def export_command(args: argparse.Namespace) -> int:
    _check_arguments(args)
    from reid_platform.workflows.export_run import export_run  # mlflow: import late

    with (
        tempfile.TemporaryDirectory(prefix="reid-export-") as work,
        Console(stderr=True).status(f"exporting run {args.run} as {args.format}"),
    ):
        made = export_run(
            args.tracking_uri,
            args.run,
            format=args.format,
            precision=args.precision,
            work_dir=Path(work),
        )
    print_table(export_table(made.entry, _registered(args, made)))
    return 0
