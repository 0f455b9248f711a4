"""Exact k nearest neighbours of every row of a feature matrix among all of its rows.

Re-ranking and query expansion need, per row, the k nearest rows (the row itself included, as a
row of `argsort(distances)` would list it) and, for re-ranking, the farthest distance of the row.
Ties are ordered by index, as a stable argsort orders them.

Neighbours are ranked by a *score* (larger = nearer) that one matrix product gives:
`scale · z_i·z_j − bias_j`, with z the L2-normalised features for cosine (scale 1, bias 0) and
the mean-centred features for the euclidean metrics (scale 2, bias ‖z_j‖², so that
‖z_i − z_j‖² = ‖z_i‖² − score_ij). On a GPU the search is a chunked brute-force product. On the
CPU a low-rank search finds the same answer several times faster: without the farthest
distance, from half of a symmetric bound product (`knn_symmetric_search`); with it, certified
row by row (`rerank_projected_search`), with a brute-force fallback for the rows it cannot
certify.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import DistanceMetric
from reid_platform.evaluation.knn_symmetric_search import symmetric_search
from reid_platform.evaluation.rerank_projected_search import projected_search
from reid_platform.evaluation.rerank_scores import ScoreSpace, brute_force_search, top_k_stable


@dataclass(frozen=True)
class Neighbours:
    """The k nearest rows of each row, nearest first, ties by smaller index.

    indices: (n, k) int64 column indices; distances: (n, k) float32 distances of the metric;
    farthest: (n,) float32 largest distance of each row to any column, or None when not asked.
    """

    indices: np.ndarray
    distances: np.ndarray
    farthest: np.ndarray | None


def nearest_neighbours(
    features: np.ndarray,
    k: int,
    *,
    metric: DistanceMetric,
    farthest: bool = False,
    device: str = "cpu",
) -> Neighbours:
    """Exact k nearest neighbours of each of the n rows of `features` (n, d) among all n rows.

    k is capped at n. With `farthest`, also each row's largest distance. CPU: low-rank search
    (brute force where it does not pay or cannot certify a row); CUDA: chunked brute force.
    """
    if k < 1:
        raise EvaluationError(f"the number of neighbours k must be at least 1, got {k}")
    return neighbours_in_space(ScoreSpace(features, metric, device), k, farthest=farthest)


def neighbours_in_space(space: ScoreSpace, k: int, *, farthest: bool = False) -> Neighbours:
    """`nearest_neighbours` of the rows of an already prepared score space (k ≥ 1)."""
    k = min(k, space.num_rows)
    all_rows = np.arange(space.num_rows, dtype=np.int64)
    if space.device.type == "cpu" and not farthest:
        found = symmetric_search(space, k)
        if found is not None:
            indices, scores = found
            # Every row gets k candidates by construction; rounding beyond the tolerance could
            # only shorten a list (scores −inf): such a row is answered by brute force.
            short = np.flatnonzero(~np.isfinite(scores).all(1))
            if len(short):
                indices[short], scores[short], _ = brute_force_search(
                    space, short, k, farthest=False
                )
            return Neighbours(indices, space.distances(scores, all_rows), None)
    if space.device.type == "cpu":
        indices, scores, lowest, failed = projected_search(space, k, farthest=farthest)
        if len(failed):
            indices[failed], scores[failed], low = brute_force_search(
                space, failed, k, farthest=farthest
            )
            if lowest is not None and low is not None:
                lowest[failed] = low
    else:
        indices, scores, lowest = brute_force_search(space, all_rows, k, farthest=farthest)
    far = None if lowest is None else space.distances(lowest, all_rows)
    return Neighbours(indices, space.distances(scores, all_rows), far)


def neighbours_from_distances(distances: np.ndarray, k: int) -> Neighbours:
    """Dense (r, n) distances → the k smallest per row (ties by index) and each row's maximum."""
    return neighbours_from_tensor(torch.from_numpy(np.ascontiguousarray(distances, np.float32)), k)


def neighbours_from_tensor(distances: Tensor, k: int) -> Neighbours:
    """(r, n) float32 distances on any device → as `neighbours_from_distances`, numpy results."""
    k = min(k, distances.shape[1])
    indices, nearest = top_k_stable(distances, k, largest=False)
    return Neighbours(indices, nearest, distances.amax(1).cpu().numpy())


def merge_neighbours(first: Neighbours, second: Neighbours, k: int) -> Neighbours:
    """Neighbours of the same rows among two disjoint column sets → the k nearest over both.

    Indices must already be in one shared numbering; the farthest distance is the larger one.
    """
    indices = np.concatenate([first.indices, second.indices], axis=1)
    distances = np.concatenate([first.distances, second.distances], axis=1)
    order = np.lexsort((indices, distances), axis=-1)[:, :k]
    farthest = None
    if first.farthest is not None and second.farthest is not None:
        farthest = np.maximum(first.farthest, second.farthest)
    return Neighbours(
        np.take_along_axis(indices, order, axis=1),
        np.take_along_axis(distances, order, axis=1),
        farthest,
    )
