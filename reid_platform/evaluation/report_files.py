"""The figures and tables of one evaluation, written under a folder in the MLflow run layout.

roc/roc.png, roc/roc.csv (far, tar, threshold), roc/distance_histogram.png,
ranklist/{worst,best}_<rank>_q<index>.png
"""

from pathlib import Path

from reid_platform.evaluation.evaluator import EvaluationReport
from reid_platform.evaluation.features import FeatureSet
from reid_platform.evaluation.figures import (
    save_distance_histogram,
    save_rank_lists,
    save_roc_csv,
    save_roc_figure,
)

ROC_FIGURE = "roc/roc.png"
ROC_TABLE = "roc/roc.csv"
DISTANCE_HISTOGRAM = "roc/distance_histogram.png"
RANK_LIST_DIR = "ranklist"


def write_report_files(
    report: EvaluationReport,
    query: FeatureSet,
    gallery: FeatureSet,
    folder: Path,
    *,
    rank_list_queries: int = 8,
    top_k: int = 10,
) -> list[Path]:
    """Write the ROC figure and table, the distance histogram and rank lists; returns the paths."""
    folder = Path(folder)
    roc = report.roc
    written = [
        save_roc_figure(roc.far, roc.tar, roc.tar_at_far, folder / ROC_FIGURE),
        save_roc_csv(roc.far, roc.tar, roc.thresholds, folder / ROC_TABLE),
        save_distance_histogram(
            roc.bin_edges, roc.genuine_counts, roc.impostor_counts, folder / DISTANCE_HISTOGRAM
        ),
    ]
    if rank_list_queries > 0:
        written += save_rank_lists(
            report.distmat,
            query.paths,
            gallery.paths,
            query.pids,
            gallery.pids,
            query.camids,
            gallery.camids,
            report.per_query_average_precision(),
            folder / RANK_LIST_DIR,
            num_queries=rank_list_queries,
            top_k=top_k,
        )
    return written
