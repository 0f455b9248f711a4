"""k-reciprocal re-ranking (Zhong et al., CVPR'17) from features, without N × N matrices.

The result equals the classic `re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)`
(notes §3.4 item 1) applied to the distances of `metric`: with N = q + g and d the distance,
original_ij = d_ij² / max_j d_ij²; initial ranks by distance; V[i] = softmax of −original over
the k-reciprocal expansion set of i; V_qe[i] = mean of V over the k2 nearest of i (k2 ≠ 1);
result = (1 − λ)·Jaccard(V_qe[i], V_qe[j]) + λ·original_ij for query i and gallery j.

What is stored instead of the classic dense matrices: per row its K = max(k1 + 1, k2) nearest
neighbours and its farthest distance, V and V_qe as sparse matrices, the exact distances of the
pairs V needs (recomputed from the features), and the (q, g) result itself. The query rows'
neighbours come from their exact distances to all N rows, which the result needs anyway; the
gallery rows' from `neighbours_in_space` among the gallery plus the transposed query block.
"""

import numpy as np
import torch

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import DistanceMetric
from reid_platform.evaluation.knn import Neighbours, neighbours_in_space
from reid_platform.evaluation.rerank_blocks import (
    add_query_neighbours,
    pattern_distances,
    query_pass_in_space,
)
from reid_platform.evaluation.rerank_scores import ScoreSpace, resolve_device
from reid_platform.evaluation.rerank_sparse import (
    expand_over_neighbours,
    jaccard_rows,
    reciprocal_expansion,
    weight_matrix,
)


def _check_arguments(
    q_feats: np.ndarray, g_feats: np.ndarray, k1: int, k2: int, lam: float
) -> None:
    if k1 < 1 or k2 < 1:
        raise EvaluationError(f"re-ranking needs k1 >= 1 and k2 >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lam <= 1.0:
        raise EvaluationError(f"re-ranking lambda_value must lie in [0, 1], got {lam}")
    if q_feats.ndim != 2 or g_feats.ndim != 2 or q_feats.shape[1] != g_feats.shape[1]:
        raise EvaluationError(
            f"query and gallery features must be (n, d) with one d; got {q_feats.shape}, "
            f"{g_feats.shape}"
        )
    if len(q_feats) == 0 or len(g_feats) == 0:
        raise EvaluationError(
            f"re-ranking needs queries and gallery; got {len(q_feats)} and {len(g_feats)} rows"
        )


def _gallery_neighbours(space: ScoreSpace, block: np.ndarray, k: int) -> Neighbours:
    """Gallery rows' k nearest among all N rows (query indices first): among the gallery by
    `neighbours_in_space`, then merged with the queries read off the (q, g) block."""
    num_query = block.shape[0]
    own = neighbours_in_space(space.part(slice(num_query, None)), k, farthest=True)
    own = Neighbours(own.indices + num_query, own.distances, own.farthest)
    return add_query_neighbours(own, block, k)


def k_reciprocal_rerank(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    *,
    metric: DistanceMetric,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    device: str = "cpu",
) -> np.ndarray:
    """Re-ranked (q, g) float32 distances of query (q, d) and gallery (g, d) features.

    `device="cuda"` runs the products on the GPU (EvaluationError when none is available).
    """
    _check_arguments(q_feats, g_feats, k1, k2, lambda_value)
    resolve_device(device)
    # One prepared copy of all N rows (queries first) serves every product below.
    space = ScoreSpace((q_feats, g_feats), metric, device)
    num_query, n = len(q_feats), space.num_rows
    k = min(max(k1 + 1, k2), n)
    query_nb, block = query_pass_in_space(space, num_query, k)
    gallery_nb = _gallery_neighbours(space, block, k)
    ranks = np.concatenate([query_nb.indices, gallery_nb.indices])
    assert query_nb.farthest is not None and gallery_nb.farthest is not None
    max_sq = np.concatenate([query_nb.farthest, gallery_nb.farthest]).astype(np.float32) ** 2
    max_sq = np.maximum(max_sq, np.finfo(np.float32).tiny)  # all-identical rows: avoid 0/0

    pattern = reciprocal_expansion(ranks, k1)
    entry_rows = np.repeat(np.arange(n), np.diff(pattern.indptr))
    both = Neighbours(ranks, np.concatenate([query_nb.distances, gallery_nb.distances]), None)
    distances = pattern_distances(pattern, both, block, space)
    weights = weight_matrix(pattern, np.square(distances) / max_sq[entry_rows])
    if k2 != 1:
        weights = expand_over_neighbours(weights, ranks, k2)
    # In place on the (q, g) block: whole-block temporaries would cost more than the sums.
    # (torch, whose elementwise ops are threaded.)
    result = torch.from_numpy(block)
    scale = torch.from_numpy(np.float32(lambda_value) / max_sq[:num_query, None])
    for rows, jaccard in jaccard_rows(weights, num_query, 1.0 - lambda_value):
        result[rows].square_().mul_(scale[rows]).add_(torch.from_numpy(jaccard))
    return block
