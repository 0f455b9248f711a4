"""`reid compare EXPERIMENT [--top K] [--search RUN_ID|NAME] [--json]`: a search's trials."""

import argparse
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from reid_platform.cli.table_output import print_table
from reid_platform.metric_names import EXPORT_LATENCY_MS, MAP, MODEL_PARAMS, RANK1

if TYPE_CHECKING:
    from reid_platform.workflows.compare import Comparison

SHOWN_METRICS = (MAP, RANK1)
"""Metric columns every table shows; the objectives are added when they are others."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "compare",
        parents=[common],
        help="the trials of a search from MLflow, sorted by the search objective",
    )
    command.add_argument("experiment", help="MLflow experiment (tracking.experiment of the config)")
    command.add_argument("--top", type=int, metavar="K", help="show the best K trials only")
    command.add_argument(
        "--search",
        metavar="RUN_ID|NAME",
        help="the search's parent run id or name (default: the latest search of the experiment)",
    )
    command.add_argument("--json", action="store_true", help="print a JSON list of trials")
    command.set_defaults(handler=compare_command)


def short_names(paths: Sequence[str]) -> dict[str, str]:
    """Each dotted path → its shortest dotted suffix of at least two parts (`pooling.kind`,
    not a bare `kind`) that no other path ends with."""
    out: dict[str, str] = {}
    for path in paths:
        parts = path.split(".")
        for size in range(min(2, len(parts)), len(parts) + 1):
            suffix = ".".join(parts[-size:])
            others = [other for other in paths if other != path]
            if not any(other == suffix or other.endswith(f".{suffix}") for other in others):
                out[path] = suffix
                break
        else:
            out[path] = path
    return out


def format_param(value: Any) -> str:
    """Floats with 4 significant digits; everything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_metric(metric: str, value: float | None) -> str:
    """`eval/*` fractions as percentages, the parameter count with separators, else 4 digits."""
    if value is None or not math.isfinite(value):
        return "—"
    if metric.startswith("eval/"):
        return f"{100.0 * value:.2f}%"
    if metric == MODEL_PARAMS:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def comparison_table(comparison: "Comparison") -> Table:
    """Rank, trial, run id, trial status, searched params, mAP, rank-1, the objectives and the
    exported model's latency (when trials exported);
    with two objectives, a "pareto" column marks (✓) the trials on the Pareto front."""
    metric, mode = comparison.objectives[0]
    title = (
        f"search {comparison.search_name} (run {comparison.parent_run_id}, "
        f"{comparison.search_status}) in {comparison.experiment}: "
        f"{len(comparison.rows)} of {comparison.total} trials by {metric} ({mode})"
    )
    table = Table(title=title, title_justify="left")
    params = sorted({name for row in comparison.rows for name in row.params})
    labels = short_names(params)
    metrics = [*SHOWN_METRICS]
    metrics += [m for m, _ in comparison.objectives if m not in metrics]
    # What serving a trial costs, next to its accuracy, once trials have exported.
    if EXPORT_LATENCY_MS not in metrics and any(
        EXPORT_LATENCY_MS in r.metrics for r in comparison.rows
    ):
        metrics.append(EXPORT_LATENCY_MS)
    table.add_column("rank", justify="right")
    table.add_column("trial")
    # Run ids are what a user copies (`reid promote`, `reid export`): never cut short.
    table.add_column("run id", no_wrap=True, min_width=32)
    table.add_column("trial status")
    for name in params:
        table.add_column(labels[name])
    for name in metrics:
        marker = " ▼" if name == metric else ""
        table.add_column(f"{name.removeprefix('eval/')}{marker}", justify="right", no_wrap=True)
    table.add_column("epoch", justify="right")
    # With one objective the front is just the best trial: the rank already says so.
    show_pareto = len(comparison.objectives) > 1
    if show_pareto:
        table.add_column("pareto", justify="center")
    for rank, row in enumerate(comparison.rows, start=1):
        pareto = ["✓" if row.run_id in comparison.pareto else ""] if show_pareto else []
        table.add_row(
            str(rank),
            row.trial_id,
            row.run_id,
            row.trial_status or row.status.lower(),
            *(format_param(row.params[name]) if name in row.params else "—" for name in params),
            *(format_metric(name, row.metrics.get(name)) for name in metrics),
            "—" if row.epoch is None else str(row.epoch),
            *pareto,
        )
    return table


def comparison_json(comparison: "Comparison") -> list[dict[str, Any]]:
    """One object per trial, best first: rank, ids, statuses, searched params, latest metrics,
    and `pareto` (on the Pareto front of the objectives; one objective: among the best)."""
    return [
        {
            "rank": rank,
            "trial_id": row.trial_id,
            "run_id": row.run_id,
            "run_name": row.run_name,
            "trial_status": row.trial_status,
            "status": row.status,
            "params": row.params,
            # JSON has no NaN: a metric that diverged is null.
            "metrics": {k: v if math.isfinite(v) else None for k, v in row.metrics.items()},
            "epoch": row.epoch,
            "pareto": row.run_id in comparison.pareto,
        }
        for rank, row in enumerate(comparison.rows, start=1)
    ]


def compare_command(args: argparse.Namespace) -> int:
    # MLflow is imported here: `reid --help` and the other commands stay fast.
    from reid_platform.workflows.compare import compare_trials

    comparison = compare_trials(
        args.tracking_uri, args.experiment, search=args.search, top=args.top
    )
    if args.json:
        print(json.dumps(comparison_json(comparison), allow_nan=False))  # noqa: T201 - machine-readable output
    else:
        print_table(comparison_table(comparison))
    return 0
