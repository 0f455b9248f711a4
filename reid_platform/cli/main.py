"""Argument parsing, logging set-up and the one-sentence error contract of the `reid` command."""

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from reid_platform.cli import (
    compare_command,
    config_commands,
    data_commands,
    eval_command,
    export_command,
    fetch_command,
    import_commands,
    metrics_command,
    promote_command,
    search_command,
    train_command,
)
from reid_platform.cli.tracking_default import DEFAULT_TRACKING_URI
from reid_platform.errors import ReidError


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reid", description="Object re-identification experiments on Ray, tracked in MLflow."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    config_commands.register(commands, common)
    data_commands.register(commands, common)
    import_commands.register(commands, common)
    eval_command.register(commands, common)
    metrics_command.register(commands, common)
    train_command.register(commands, common)
    search_command.register(commands, common)
    compare_command.register(commands, common)
    promote_command.register(commands, common)
    export_command.register(commands, common)
    fetch_command.register(commands, common)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, show_time=False)],
        force=True,
    )


def user_sentence(error: ReidError) -> str:
    """The error's own sentence, also when a data-loader worker wrapped it in its traceback."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    if len(lines) <= 1:
        return str(error).strip()
    # torch's worker re-raise puts "<module>.<Class>: <message>" on the traceback's last line.
    return lines[-1].partition(f"{type(error).__name__}: ")[2] or lines[-1]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `reid` command; user errors print one sentence and return a non-zero status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling a positional list at the first option: `key=value` overrides
    # written after the options (`reid search CONFIG --space S a.b=1`) join those before them.
    if (
        extra
        and isinstance(getattr(args, "overrides", None), list)
        and all("=" in token and not token.startswith("-") for token in extra)
    ):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _configure_logging(args.verbose)
    try:
        status: int = args.handler(args)
    except ReidError as error:
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error:[/] {escape(user_sentence(error))}", highlight=False
        )
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
