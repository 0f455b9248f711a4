"""`reid fetch RUN_ID | models:/NAME@ALIAS --format onnx|tensorrt --out DIR`."""

import argparse
from pathlib import Path
from typing import Any, get_args

from rich.console import Console
from rich.markup import escape

from reid_platform.export.artifact_names import Format, Precision
from reid_platform.export.manifest import MANIFEST_NAME


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "fetch",
        parents=[common],
        help="download an exported artifact and its manifest, verifying its checksum",
    )
    command.add_argument(
        "source", metavar="RUN_ID|models:/NAME@ALIAS", help="a run id or a registered version"
    )
    command.add_argument("--format", required=True, choices=get_args(Format))
    command.add_argument(
        "--precision",
        choices=get_args(Precision),
        help="which of a run's exports of the format (default: its only one)",
    )
    command.add_argument("--out", required=True, type=Path, metavar="DIR", help="target folder")
    command.set_defaults(handler=fetch_command)


def fetch_command(args: argparse.Namespace) -> int:
    from reid_platform.workflows.fetch import fetch_export  # mlflow: import late

    artifact, entry = fetch_export(
        args.tracking_uri, args.source, format=args.format, precision=args.precision, out=args.out
    )
    console = Console(soft_wrap=True, highlight=False)
    console.print(escape(str(artifact)))
    console.print(escape(str(args.out / MANIFEST_NAME)))
    console.print(f"sha256 verified: {entry.sha256} ({entry.format} {entry.precision})")
    return 0
