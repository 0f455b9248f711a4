"""The query × all block of k-reciprocal re-ranking and the gallery rows' query neighbours.

The re-ranked result needs the exact (q, g) distances anyway, so the queries' neighbours among
the gallery come from exact products: per chunk of queries, the (c, g) product is written
straight into the result array (no second copy). Among the other queries, the certified search
of `knn` finds them (a full (q, q) product would cost a sixth of the block's). The gallery
rows' neighbours among the queries are read off the same block: only the queries no farther
than a gallery row's k-th nearest gallery item can enter its k nearest, and a single
comparison pass over the block finds those few.
"""

import numpy as np
import torch
from scipy.sparse import csr_matrix
from torch import Tensor

from reid_platform.evaluation.distances import DistanceMetric
from reid_platform.evaluation.knn import (
    Neighbours,
    merge_neighbours,
    neighbours_from_tensor,
    neighbours_in_space,
)
from reid_platform.evaluation.rerank_pairs import pair_scores
from reid_platform.evaluation.rerank_scores import ScoreSpace, matmul_nt

QUERY_CHUNK_ROWS = 1024
"""Queries per product: the (c, q) part and the top-k buffers stay small."""


def _to_distances(
    products: Tensor, row_sq: Tensor, col_sq: Tensor, metric: DistanceMetric
) -> Tensor:
    """(c, m) products of prepared rows and columns → distances of `metric`, in place."""
    if metric == "cosine":
        return products.neg_().add_(1.0)
    squared = products.mul_(-2.0).add_(col_sq).add_(row_sq[:, None]).clamp_(min=0.0)
    return squared.sqrt_() if metric == "euclidean" else squared


def query_pass(
    q_feats: np.ndarray, g_feats: np.ndarray, metric: DistanceMetric, k: int, device: str
) -> tuple[Neighbours, np.ndarray]:
    """Queries (q, d) against all N = q + g rows (queries first) → their k nearest (indices
    into the N rows, with each row's farthest distance) and the (q, g) float32 distances."""
    space = ScoreSpace((q_feats, g_feats), metric, device)
    return query_pass_in_space(space, len(q_feats), k)


def query_pass_in_space(space: ScoreSpace, num_query: int, k: int) -> tuple[Neighbours, np.ndarray]:
    """`query_pass` on a prepared space of all N rows whose first `num_query` are queries."""
    queries, gallery = space.z[:num_query], space.z[num_query:]
    q_sq, g_sq = space.sq_norms[:num_query], space.sq_norms[num_query:]
    # Among the queries themselves the certified search beats a (q, q) product (measured).
    among_queries = neighbours_in_space(space.part(slice(0, num_query)), k, farthest=True)
    block = np.empty((num_query, len(gallery)), dtype=np.float32)
    on_cpu = space.device.type == "cpu"
    parts: list[Neighbours] = []
    with torch.no_grad():
        for start in range(0, num_query, QUERY_CHUNK_ROWS):
            rows = slice(start, min(start + QUERY_CHUNK_ROWS, num_query))
            # On the CPU straight into the result: no second copy of the block.
            out = torch.from_numpy(block[rows]) if on_cpu else None
            to_gallery = matmul_nt(queries[rows], gallery, out=out)
            _to_distances(to_gallery, q_sq[rows], g_sq, space.metric)
            own = _rows_of(among_queries, rows)
            other = neighbours_from_tensor(to_gallery, k)
            other = Neighbours(other.indices + num_query, other.distances, other.farthest)
            parts.append(merge_neighbours(own, other, k))
            if not on_cpu:
                block[rows] = to_gallery.cpu().numpy()
    return stack_neighbours(parts), block


def _rows_of(neighbours: Neighbours, rows: slice) -> Neighbours:
    farthest = None if neighbours.farthest is None else neighbours.farthest[rows]
    return Neighbours(neighbours.indices[rows], neighbours.distances[rows], farthest)


def stack_neighbours(parts: list[Neighbours]) -> Neighbours:
    """Neighbours of consecutive row chunks → one Neighbours over all their rows."""
    farthest = [p.farthest for p in parts if p.farthest is not None]
    return Neighbours(
        np.concatenate([p.indices for p in parts]),
        np.concatenate([p.distances for p in parts]),
        np.concatenate(farthest) if len(farthest) == len(parts) else None,
    )


def add_query_neighbours(own: Neighbours, block: np.ndarray, k: int) -> Neighbours:
    """Gallery rows' k nearest among the gallery (`own`, (g, k), gallery indices already offset
    by q, with farthest) and the (q, g) block → their k nearest among all N rows.

    A query i can enter gallery row j's k nearest only when block[i, j] ≤ own's k-th distance
    of j (ties included), so only those pairs are gathered; the merge then orders by distance
    and index exactly as over a full row.
    """
    num_gallery = block.shape[1]
    # With fewer than k gallery rows, every query may enter: take them all.
    kth = own.distances[:, -1] if own.indices.shape[1] >= k else np.full(num_gallery, np.inf)
    query_idx, gallery_idx = np.nonzero(block <= kth[None, :])
    dist = block[query_idx, gallery_idx]
    order = np.lexsort((query_idx, dist, gallery_idx))
    query_idx, gallery_idx, dist = query_idx[order], gallery_idx[order], dist[order]
    counts = np.bincount(gallery_idx, minlength=num_gallery)
    slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = slot < k
    # Rows with fewer than k candidates are padded with infinite distances, never chosen.
    indices = np.zeros((num_gallery, k), dtype=np.int64)
    distances = np.full((num_gallery, k), np.inf, dtype=np.float32)
    indices[gallery_idx[keep], slot[keep]] = query_idx[keep]
    distances[gallery_idx[keep], slot[keep]] = dist[keep]
    farthest = np.maximum(own.farthest, block.max(axis=0)) if own.farthest is not None else None
    return merge_neighbours(own, Neighbours(indices, distances, farthest), k)


def pattern_distances(
    pattern: csr_matrix, neighbours: Neighbours, block: np.ndarray, space: ScoreSpace
) -> np.ndarray:
    """Distances of every stored entry (i, j) of `pattern` (N, N) → (nnz,) float32 aligned with
    its `indices`.

    Most entries are already known: j among i's nearest (`neighbours`, (N, K) of all N rows),
    or a query-gallery pair of the (q, g) block. Only the rest are computed in `space` (all N
    rows, queries first).
    """
    rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
    cols = pattern.indices.astype(np.int64)
    out = np.empty(len(cols), dtype=np.float32)
    hits = neighbours.indices[rows] == cols[:, None]
    found = hits.any(1)
    out[found] = neighbours.distances[rows[found], hits[found].argmax(1)]
    num_query = block.shape[0]
    query_row = ~found & (rows < num_query) & (cols >= num_query)
    out[query_row] = block[rows[query_row], cols[query_row] - num_query]
    query_col = ~found & (rows >= num_query) & (cols < num_query)
    out[query_col] = block[cols[query_col], rows[query_col] - num_query]
    rest = np.flatnonzero(~(found | query_row | query_col))
    if len(rest):
        scores = pair_scores(space, rows[rest], cols[rest, None])[:, 0]
        out[rest] = space.distances(scores, rows[rest])
    return out
