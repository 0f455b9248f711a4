"""The ROC curve as a figure (log-scale FAR) and as a csv table (``far,tar,threshold``).

Convention (see ``evaluation/roc.py``): genuine pairs are same id on another camera, impostor
pairs are different ids; FAR is the fraction of impostors accepted, TAR of genuines accepted.
Figures use matplotlib's object API (``Figure`` + ``FigureCanvasAgg``), never pyplot, so no global
state leaks between calls or threads and no display is needed.
"""

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reid_platform.errors import EvaluationError

__all__ = ["save_roc_csv", "save_roc_figure"]

_DEFAULT_TITLE = "ROC (genuine: same id, other camera; impostor: other id)"
_FALLBACK_MIN_FAR = 1e-6


def save_roc_figure(
    far: np.ndarray,
    tar: np.ndarray,
    tar_at_far: Mapping[float, float],
    path: str | PathLike[str],
    *,
    title: str = _DEFAULT_TITLE,
) -> Path:
    """Plot TAR against FAR (log scale) with a labelled marker at each FAR target; write a PNG.

    far, tar: (n_points,) the curve, far ascending. A log axis cannot show far = 0, so those
    points are drawn at the smallest positive FAR of the curve (or of the targets).
    tar_at_far: {far target: TAR}; non-finite TARs (target unreachable) get no marker.
    Returns the path written (parent folders are created).
    """
    far, tar = _check_curve(far=far, tar=tar)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(6.0, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(_clip_far(far, tar_at_far), tar, color="tab:blue", linewidth=1.5, label="ROC")
    for target, value in sorted(tar_at_far.items()):
        if not np.isfinite(value):
            continue
        axes.plot([target], [value], marker="o", color="tab:red", linestyle="none")
        axes.annotate(
            f"TAR@FAR={target:.0e}: {value:.3f}",
            (target, value),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    axes.set_xscale("log")
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("false accept rate (impostor pairs accepted)")
    axes.set_ylabel("true accept rate (genuine pairs accepted)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, format="png")
    return out


def save_roc_csv(
    far: np.ndarray, tar: np.ndarray, thresholds: np.ndarray, path: str | PathLike[str]
) -> Path:
    """Write the curve as csv with header ``far,tar,threshold``, one row per point.

    far, tar, thresholds: (n_points,). Values are written with 17 significant digits, so a
    float64 (or float32) value reads back exactly. Returns the path written.
    """
    far, tar, thresholds = _check_curve(far=far, tar=tar, thresholds=thresholds)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([far, tar, thresholds]).astype(np.float64)
    np.savetxt(out, table, fmt="%.17g", delimiter=",", header="far,tar,threshold", comments="")
    return out


def _check_curve(**columns: np.ndarray) -> list[np.ndarray]:
    """The columns as 1-D arrays of one common length, else EvaluationError naming the culprit."""
    arrays = {name: np.asarray(values) for name, values in columns.items()}
    first_name, first = next(iter(arrays.items()))
    for name, array in arrays.items():
        if array.ndim != 1 or array.shape != first.shape:
            raise EvaluationError(
                f"{name} has shape {array.shape} but must be 1-D like {first_name} {first.shape}."
            )
    return list(arrays.values())


def _clip_far(far: np.ndarray, tar_at_far: Mapping[float, float]) -> np.ndarray:
    """FAR with zeros raised to the smallest positive FAR, so a log axis can draw them."""
    positive = far[far > 0]
    if positive.size:
        floor = float(positive.min())
    else:
        targets = [target for target in tar_at_far if target > 0]
        floor = min(targets) if targets else _FALLBACK_MIN_FAR
    return np.maximum(far, floor)
