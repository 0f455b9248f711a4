"""`reid promote SEARCH --student CONFIG [key=value ...]`: the best trial of a search teaches a
smaller student (distillation on Ray Train), whose export is registered as `champion`."""

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reid_platform import metric_names
from reid_platform.cli.table_output import print_table
from reid_platform.cli.tracking_default import DEFAULT_TRACKING_URI
from reid_platform.config import load_config
from reid_platform.errors import ReidError

if TYPE_CHECKING:
    from reid_platform.workflows.promote import PromotionOutcome


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "promote",
        parents=[common],
        help="distil a search's best trial into a smaller student and register it as champion",
    )
    command.add_argument(
        "search",
        nargs="?",
        metavar="SEARCH_RUN_ID|NAME",
        help="the search whose best trial teaches (its parent run id or search name; "
        "default: the latest search of the student config's tracking.experiment)",
    )
    command.add_argument(
        "--student",
        required=True,
        nargs="+",
        metavar=("CONFIG", "key=value"),
        help="the student's experiment YAML, then its dotted overrides; its data and input "
        "size are replaced by the teacher's",
    )
    command.add_argument("--teacher", metavar="RUN_ID", help="teach with this run instead")
    command.add_argument(
        "--register",
        metavar="NAME",
        help="registered model name (default: the student config's tracking.registered_model)",
    )
    command.add_argument(
        "--alias", default="champion", help="the alias to move to the student (default champion)"
    )
    command.add_argument(
        "--gate",
        action="store_true",
        help="move the alias only if the student's validation mAP is at least the current "
        "holder's on the same validation split (else the version gets 'challenger')",
    )
    command.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join (host:port, auto or ray://host:port); default: a local Ray",
    )
    # Overrides written after other options land here (see `cli.main`), after --student's own.
    command.set_defaults(handler=promote_command, overrides=[])


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.2f}%"


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value / 1e6:.2f} M" if unit == "M" else f"{value:.2f}{unit}"


_ROWS = (
    ("parameters", metric_names.MODEL_PARAMS, "M"),
    ("latency, batch 1", metric_names.EXPORT_LATENCY_MS, " ms"),
    ("validation mAP", metric_names.MAP, "%"),
    ("test mAP", metric_names.test_metric(metric_names.MAP), "%"),
)


def comparison_table(outcome: "PromotionOutcome") -> Table:
    """Teacher against student: size, exported latency, validation and test mAP."""
    table = Table(title=f"distillation run {outcome.run_id}", title_justify="left")
    table.add_column("")
    table.add_column(f"teacher (run {outcome.teacher_run_id[:8]})", justify="right")
    table.add_column("student", justify="right")
    metrics = outcome.student_metrics  # the teacher's figures are logged on the run too
    for label, key, unit in _ROWS:
        render = _percent if unit == "%" else lambda v, u=unit: _number(v, u)
        table.add_row(
            label,
            render(metrics.get(metric_names.teacher_metric(key))),
            render(metrics.get(key)),
        )
    return table


def _training_note(outcome: "PromotionOutcome") -> str:
    if not outcome.trained:
        return "finished by an earlier launch, not trained again"
    if outcome.resumed_after_epoch is not None:
        return f"resumed after epoch {outcome.resumed_after_epoch} and finished"
    return "trained"


def promote_command(args: argparse.Namespace) -> int:
    from reid_platform.workflows.promote import PromotionRequest, promote  # mlflow: late

    config_path, *overrides = args.student
    if "=" in config_path:
        raise ReidError(f"--student needs the student's config file first, got {config_path!r}")
    if args.search is not None and "=" in args.search:
        raise ReidError(
            f"{args.search!r} looks like an override, not a search: write overrides after "
            "--student CONFIG"
        )
    request = PromotionRequest(
        student=load_config(config_path, [*overrides, *args.overrides]),
        search=args.search,
        teacher=args.teacher,
        register=args.register,
        alias=args.alias,
        gate=args.gate,
        tracking_uri=args.tracking_uri,
        address=args.address,
        working_dir=Path.cwd(),
    )
    notices = Console(stderr=True, soft_wrap=True, highlight=False)
    outcome = promote(request, say=lambda line: notices.print(escape(line)))
    console = Console(soft_wrap=True, highlight=False)
    console.print(f"distillation run {outcome.run_name}: {_training_note(outcome)}")
    print_table(comparison_table(outcome))
    registered = outcome.registered
    moved = f", was version {registered.previous}" if registered.previous is not None else ""
    again = " (registered by an earlier launch)" if registered.resumed else ""
    since = "" if registered.holds_alias else f"; {registered.alias} has moved on since"
    console.print(
        f"registered {registered.name} version {registered.version} as "
        f"{registered.alias}{moved}{again}{since}"
    )
    fetch = outcome.fetch_command()
    if args.tracking_uri != DEFAULT_TRACKING_URI:
        fetch += f" --tracking-uri {shlex.quote(args.tracking_uri)}"
    console.print(fetch, markup=False)
    return 0
