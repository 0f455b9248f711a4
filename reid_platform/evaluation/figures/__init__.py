"""Evaluation figures: rank lists (PIL), the ROC curve and table, the distance histogram.

Trial artifacts (DESIGN.md): ``ranklist/*.png`` from `save_rank_lists`, ``roc/roc.png`` from
`save_roc_figure`, ``roc/roc.csv`` from `save_roc_csv`. Every function takes plain arrays, so it
works on a ``RankingResult``/``RocResult`` or on numbers computed elsewhere.
"""

from reid_platform.evaluation.figures.histogram import histogram_density, save_distance_histogram
from reid_platform.evaluation.figures.ranklist import (
    per_query_average_precision,
    save_rank_lists,
    select_rank_list_queries,
    top_k_gallery,
)
from reid_platform.evaluation.figures.roc_figure import save_roc_csv, save_roc_figure

__all__ = [
    "histogram_density",
    "per_query_average_precision",
    "save_distance_histogram",
    "save_rank_lists",
    "save_roc_csv",
    "save_roc_figure",
    "select_rank_list_queries",
    "top_k_gallery",
]
