"""Trials of a search as rows: read from MLflow child runs, ranked, Pareto-filtered, as CSV.

Pure functions over `TrialRow`s (no MLflow calls), shared by the search's summary
(`search_runs.finish_search_run`), its figures and `reid compare`.
"""

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Run

from reid_platform.errors import ReidError
from reid_platform.metric_names import (
    EVAL_METRICS,
    EXPORT_IMAGES_PER_SEC,
    EXPORT_LATENCY_MS,
    MODEL_PARAMS,
)
from reid_platform.tracking.layout import (
    RUN_NAME_TAG,
    SEARCHED_PARAMS_TAG,
    TRIAL_ID_TAG,
    TRIAL_STATUS_TAG,
)

logger = logging.getLogger(__name__)

Objectives = Sequence[tuple[str, str]]
SCORED_OUTCOMES = frozenset({"completed", "stopped_early"})
"""Trial outcomes whose metrics count for the best trial (a failed trial's never do)."""


@dataclass(frozen=True)
class TrialRow:
    """One trial as MLflow holds it.

    params: the sampled search parameters only (`reid.searched_params`), dotted path → value.
    metrics: each metric's latest value (the last epoch that logged it).
    epoch: the last logged step (0-based epoch, as reported to Tune), None before any metric.
    start_time, end_time: MLflow's milliseconds since the epoch (end_time None while running).
    """

    trial_id: str
    run_id: str
    run_name: str
    status: str
    trial_status: str | None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    epoch: int | None = None
    start_time: int | None = None
    end_time: int | None = None


def _searched_params(run: Run) -> dict[str, Any]:
    text = run.data.tags.get(SEARCHED_PARAMS_TAG)
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        logger.warning("run %s has an unreadable %s tag", run.info.run_id, SEARCHED_PARAMS_TAG)
        return {}
    return dict(value) if isinstance(value, dict) else {}


def _last_step(run: Run) -> int | None:
    # The run's latest metric points carry their step (= epoch); the largest is the last epoch.
    steps = [metric.step for metric in run.data.to_proto().metrics]
    return max(steps) if steps else None


def trial_row(run: Run) -> TrialRow:
    """The `TrialRow` of a child run as returned by MLflow."""
    tags = run.data.tags
    return TrialRow(
        trial_id=tags.get(TRIAL_ID_TAG, ""),
        run_id=run.info.run_id,
        run_name=run.info.run_name or tags.get(RUN_NAME_TAG, ""),
        status=str(run.info.status),
        trial_status=tags.get(TRIAL_STATUS_TAG),
        params=_searched_params(run),
        metrics=dict(run.data.metrics),
        epoch=_last_step(run),
        start_time=run.info.start_time,
        end_time=run.info.end_time,
    )


def metric_value(row: TrialRow, metric: str) -> float | None:
    """The row's latest value of `metric`, None when absent or not finite."""
    value = row.metrics.get(metric)
    return value if value is not None and math.isfinite(value) else None


def rank_trials(rows: Sequence[TrialRow], metric: str, mode: str) -> list[TrialRow]:
    """`rows` best first by `metric` (`mode` max or min).

    Trials that ended normally (completed, stopped early) come first, by `metric`; then the
    others holding it (failed, interrupted, running), by `metric`, since a failed trial's last
    value is no result; rows without the metric last, in input order.
    """
    if mode not in ("max", "min"):
        raise ReidError(f"objective mode {mode!r} is not max or min")
    sign = -1.0 if mode == "max" else 1.0

    def by_value(group: list[TrialRow]) -> list[TrialRow]:
        return sorted(group, key=lambda row: sign * (metric_value(row, metric) or 0.0))

    scored: list[TrialRow] = []
    unscored: list[TrialRow] = []
    missing: list[TrialRow] = []
    for row in rows:
        if metric_value(row, metric) is None:
            missing.append(row)
        elif row.trial_status in SCORED_OUTCOMES:
            scored.append(row)
        else:
            unscored.append(row)
    return by_value(scored) + by_value(unscored) + missing


def scored_rows(rows: Sequence[TrialRow], metrics: Sequence[str]) -> list[TrialRow]:
    """Rows of trials that ended normally (completed or stopped early) holding every metric."""
    return [
        row
        for row in rows
        if row.trial_status in SCORED_OUTCOMES
        and all(metric_value(row, m) is not None for m in metrics)
    ]


def pareto_front(rows: Sequence[TrialRow], objectives: Objectives) -> list[TrialRow]:
    """The rows no other row dominates (at least as good on every objective, better on one)."""

    def oriented(row: TrialRow) -> list[float]:
        return [
            (1.0 if mode == "max" else -1.0) * (metric_value(row, metric) or 0.0)
            for metric, mode in objectives
        ]

    points = [oriented(row) for row in rows]

    def dominated(index: int) -> bool:
        mine = points[index]
        return any(
            all(o >= m for o, m in zip(other, mine, strict=True)) and other != mine
            for other in points
        )

    return [row for index, row in enumerate(rows) if not dominated(index)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def metric_columns(rows: Sequence[TrialRow], objectives: Objectives) -> list[str]:
    """The CSV's metric columns: every `eval/*` metric, `model/params`, the exported model's
    speed and the objectives (those some row has)."""
    present = {key for row in rows for key in row.metrics}
    usual = (*EVAL_METRICS, MODEL_PARAMS, EXPORT_LATENCY_MS, EXPORT_IMAGES_PER_SEC)
    wanted = {key for key in present if key.startswith("eval/") or key in usual}
    wanted |= {metric for metric, _ in objectives if metric in present}
    known = [key for key in usual if key in wanted]
    return known + sorted(wanted - set(known))


def trials_csv(rows: Sequence[TrialRow], objectives: Objectives) -> str:
    """`trials.csv`: trial_id, run_id, trial_status, searched params, metrics, epoch."""
    param_names = sorted({key for row in rows for key in row.params})
    metrics = metric_columns(rows, objectives)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial_id", "run_id", "trial_status", *param_names, *metrics, "epoch"])
    for row in rows:
        writer.writerow(
            [
                row.trial_id,
                row.run_id,
                _cell(row.trial_status),
                *(_cell(row.params.get(name)) for name in param_names),
                *(_cell(row.metrics.get(name)) for name in metrics),
                _cell(row.epoch),
            ]
        )
    return out.getvalue()
