"""The search's own figures, logged to the parent run: optimisation history, parameter importances.

Both are drawn from the trial rows MLflow holds (not from a live Optuna study), so a resumed
search or a search whose Optuna study lived only in memory gets the same figures. Importances
come from Optuna's fANOVA evaluator on an in-memory study rebuilt from the rows; like Optuna
itself, it assesses only the parameters present in every finished trial, so a conditional
parameter (sampled only under its `when`) is left out.
"""

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reid_platform.tracking.trial_table import Objectives, TrialRow, metric_value, scored_rows

logger = logging.getLogger(__name__)

HISTORY_FIGURE = "optimization_history.png"
IMPORTANCE_FIGURE = "param_importances.png"
_DPI = 100
_IMPORTANCE_SEED = 0


def completion_order(rows: Sequence[TrialRow]) -> list[TrialRow]:
    """Rows by end time (then start time); rows without times keep their order at the end."""
    never = math.inf

    def when(row: TrialRow) -> tuple[float, float]:
        end = row.end_time if row.end_time is not None else never
        start = row.start_time if row.start_time is not None else never
        return (end, start)

    return sorted(rows, key=when)


def best_so_far(values: Sequence[float], mode: str) -> list[float]:
    """Running maximum (`mode` max) or minimum (min) of `values`."""
    pick = max if mode == "max" else min
    out: list[float] = []
    for value in values:
        out.append(value if not out else pick(out[-1], value))
    return out


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)  # attaches an Agg canvas: no display, no pyplot state
    figure.savefig(path, dpi=_DPI)
    return path


def _history_figure(rows: Sequence[TrialRow], objectives: Objectives, path: Path) -> Path | None:
    series = []
    for metric, mode in objectives:
        ordered = completion_order(scored_rows(rows, [metric]))
        values = [metric_value(row, metric) or 0.0 for row in ordered]
        series.append((metric, mode, values))
    if not any(values for _, _, values in series):
        logger.info("no finished trial holds the objective; no optimisation history figure")
        return None
    figure = Figure(figsize=(6.4, 3.2 * len(series)))
    axes = figure.subplots(len(series), 1, squeeze=False)[:, 0]
    for ax, (metric, mode, values) in zip(axes, series, strict=True):
        steps = list(range(1, len(values) + 1))
        ax.plot(steps, values, "o", label="trial")
        ax.step(steps, best_so_far(values, mode), where="post", label=f"best so far ({mode})")
        ax.set_xlabel("trial (completion order)")
        ax.set_ylabel(metric)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    axes[0].set_title("optimisation history")
    figure.tight_layout()
    return _save(figure, path)


def _distribution(values: list[Any]) -> optuna.distributions.BaseDistribution | None:
    """A distribution that holds every observed value; None when the value never varies."""
    if len(set(map(repr, values))) < 2:
        return None
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numeric:
        return optuna.distributions.CategoricalDistribution(sorted(set(values), key=repr))
    if all(isinstance(v, int) for v in values):
        return optuna.distributions.IntDistribution(min(values), max(values))
    return optuna.distributions.FloatDistribution(float(min(values)), float(max(values)))


def param_importances(rows: Sequence[TrialRow], metric: str, mode: str) -> dict[str, float]:
    """fANOVA importances (summing to 1) of the searched params for `metric`; {} when there are
    fewer than 2 finished trials or no parameter varies across all of them."""
    finished = scored_rows(rows, [metric])
    if len(finished) < 2:
        return {}
    shared = set.intersection(*(set(row.params) for row in finished))
    distributions = {}
    for name in sorted(shared):
        distribution = _distribution([row.params[name] for row in finished])
        if distribution is not None:
            distributions[name] = distribution
    if not distributions:
        return {}
    # Optuna announces every new study at INFO; this one is an internal detail.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for row in finished:
        study.add_trial(
            optuna.trial.create_trial(
                value=metric_value(row, metric),
                params={name: row.params[name] for name in distributions},
                distributions=distributions,
            )
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=_IMPORTANCE_SEED)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def _importance_figure(rows: Sequence[TrialRow], objectives: Objectives, path: Path) -> Path | None:
    metric, mode = objectives[0]
    importances = param_importances(rows, metric, mode)
    if not importances:
        logger.info(
            "parameter importances need 2 finished trials and a parameter that varies; skipped"
        )
        return None
    names = list(reversed(importances))  # most important at the top
    figure = Figure(figsize=(6.4, 1.2 + 0.4 * len(names)))
    ax = figure.subplots()
    ax.barh(names, [importances[name] for name in names])
    ax.set_xlabel(f"importance for {metric} (fANOVA)")
    ax.set_title("parameter importances")
    figure.tight_layout()
    return _save(figure, path)


def write_search_figures(
    rows: Sequence[TrialRow], objectives: Objectives, out_dir: Path
) -> list[Path]:
    """Write `optimization_history.png` and `param_importances.png` into `out_dir`.

    History: each objective per trial in completion order with its best-so-far line (completed
    and stopped-early trials). Importances: for the first objective. A figure without enough
    data is skipped with a log line; the paths written are returned.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        _history_figure(rows, objectives, out_dir / HISTORY_FIGURE),
        _importance_figure(rows, objectives, out_dir / IMPORTANCE_FIGURE),
    ]
    return [path for path in written if path is not None]
