"""Genuine vs impostor distance distributions as one figure.

The two classes differ in size by orders of magnitude (a Market-1501 test set has ~10⁵ genuine
and ~5·10⁷ impostor pairs), so each histogram is normalised to a density (area 1) before the two
are overlaid; raw counts would flatten the genuine one to the axis.
"""

from os import PathLike
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reid_platform.errors import EvaluationError

__all__ = ["histogram_density", "save_distance_histogram"]

_DEFAULT_TITLE = "Genuine (same id, other camera) vs impostor (other id) distances"


def histogram_density(bin_edges: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Counts → density with unit area: counts / (total · bin width).

    bin_edges: (bins + 1,) increasing; counts: (bins,). Returns (bins,) float64, all zeros when
    the total count is zero (an empty class draws as a flat line, not NaN).
    """
    widths = np.diff(bin_edges.astype(np.float64))
    total = float(np.sum(counts))
    if total == 0:
        return np.zeros(counts.shape, dtype=np.float64)
    return counts.astype(np.float64) / (total * widths)


def save_distance_histogram(
    bin_edges: np.ndarray,
    genuine_counts: np.ndarray,
    impostor_counts: np.ndarray,
    path: str | PathLike[str],
    *,
    title: str = _DEFAULT_TITLE,
) -> Path:
    """Overlay the genuine and impostor distance densities; write a PNG and return its path.

    bin_edges: (bins + 1,) increasing distance bin edges shared by both classes;
    genuine_counts, impostor_counts: (bins,) pair counts per bin (``RocResult`` fields).
    """
    _check_histogram(bin_edges, genuine_counts, impostor_counts)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(6.0, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, counts, colour in (
        ("genuine", genuine_counts, "tab:green"),
        ("impostor", impostor_counts, "tab:red"),
    ):
        density = histogram_density(bin_edges, counts)
        label = f"{name} pairs (n={int(np.sum(counts)):,})"
        axes.stairs(density, bin_edges, fill=True, alpha=0.4, color=colour, label=label)
        axes.stairs(density, bin_edges, color=colour, linewidth=1.0)
    axes.set_xlabel("distance")
    axes.set_ylabel("density")
    axes.set_title(title, fontsize=10)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out, format="png")
    return out


def _check_histogram(
    bin_edges: np.ndarray, genuine_counts: np.ndarray, impostor_counts: np.ndarray
) -> None:
    """Raise EvaluationError naming the array whose shape does not fit the others."""
    if bin_edges.ndim != 1 or bin_edges.size < 2 or np.any(np.diff(bin_edges) <= 0):
        raise EvaluationError(
            f"bin_edges must be 1-D, increasing, with at least 2 edges; got shape "
            f"{bin_edges.shape}."
        )
    for name, counts in (("genuine_counts", genuine_counts), ("impostor_counts", impostor_counts)):
        if counts.shape != (bin_edges.size - 1,):
            raise EvaluationError(
                f"{name} has shape {counts.shape} but bin_edges of {bin_edges.size} edges needs "
                f"({bin_edges.size - 1},)."
            )
