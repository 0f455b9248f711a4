"""Ranking metrics for galleries of millions: exact by streaming, or on a top-k search result.

`evaluate_streaming` is exact: it computes query × gallery distances one query chunk at a time
and feeds a `RankingAccumulator`, so the (q, g) matrix never exists whole; memory is bounded
by one (chunk_rows, g) chunk whatever the number of queries.

`evaluate_top_k` scores the `(distances, indices)` a `GalleryIndex` search returns, with the
Market-1501 junk rule (same id and same camera removed from the list). Only the retrieved
list is known, so every gallery item that was not retrieved is treated as ranked after it and
never found:

- a query is evaluated iff it has a match anywhere in the gallery (from the ids alone), so the
  evaluated queries are those of the full evaluation;
- CMC has `min(max_rank, k)` ranks; rank r counts a hit within the first r kept items;
- AP@k = Σ over retrieved matches of precision-at-their-rank / (matches in the whole gallery);
- INP@k = matches / rank of the hardest match when every match was retrieved, else 0.

Each is a lower bound of the full-list metric and equals it exactly when every match of the
query was retrieved (always so when k ≥ g with an exact index); CMC rank r is also exact
whenever r ≤ k − (junk items retrieved).
"""

import numpy as np

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import DistanceMetric, distance_chunks
from reid_platform.evaluation.ranking import RankingAccumulator, RankingResult

STREAM_CHUNK_ELEMENTS = 2**25
"""Distances held per chunk by default in `evaluate_streaming`: 128 MB of float32."""

TOP_K_CHUNK_ROWS = 4096
"""Queries scored at once by `evaluate_top_k`, bounding its (rows, k) temporaries."""


def evaluate_streaming(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    metric: DistanceMetric,
    max_rank: int = 50,
    chunk_rows: int | None = None,
    device: str = "cpu",
) -> RankingResult:
    """Exact CMC/mAP/mINP of (q, d) queries against a (g, d) gallery in bounded memory.

    Equal to `evaluate_ranking(pairwise_distances(q_feats, g_feats, metric), ...)`.
    chunk_rows: queries per distance chunk; None picks rows so a chunk holds about
    `STREAM_CHUNK_ELEMENTS` distances.
    """
    _check_lengths(q_feats, q_pids, q_camids, "query")
    _check_lengths(g_feats, g_pids, g_camids, "gallery")
    if chunk_rows is None:
        chunk_rows = max(1, STREAM_CHUNK_ELEMENTS // max(len(g_pids), 1))
    if chunk_rows < 1:
        raise EvaluationError(f"chunk_rows must be >= 1; got {chunk_rows}")
    accumulator = RankingAccumulator(g_pids, g_camids, max_rank=max_rank)
    for rows, distances in distance_chunks(
        q_feats, g_feats, metric, chunk_rows=chunk_rows, device=device
    ):
        accumulator.add(distances, q_pids[rows], q_camids[rows])
    return accumulator.result()


def evaluate_top_k(
    distances: np.ndarray,
    indices: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    max_rank: int = 50,
) -> RankingResult:
    """Metrics of a top-k search result (see the module docstring for what they mean).

    distances: (q, k) float32, indices: (q, k) int64 gallery ids (-1 = no hit, as faiss pads);
    rows are re-ordered by (distance, gallery id). The CMC has `min(max_rank, k)` ranks.
    Raises EvaluationError when no query has a match in the gallery.
    """
    indices = _check_top_k(distances, indices, q_pids, q_camids, g_pids, g_camids, max_rank)
    order = np.lexsort((indices, distances), axis=-1)  # the contract's tie-break
    indices = np.take_along_axis(indices, order, axis=1)
    total = _matches_in_gallery(q_pids, q_camids, g_pids, g_camids)
    first_hit = np.empty(len(q_pids), np.int64)
    ap, inp = np.empty(len(q_pids)), np.empty(len(q_pids))
    for start in range(0, len(q_pids), TOP_K_CHUNK_ROWS):
        rows = slice(start, start + TOP_K_CHUNK_ROWS)
        first_hit[rows], ap[rows], inp[rows] = _score_rows(
            indices[rows], q_pids[rows], q_camids[rows], g_pids, g_camids, total[rows]
        )
    valid = np.flatnonzero(total > 0)
    if len(valid) == 0:
        raise EvaluationError("no query has a match in the gallery (same id, other camera)")
    depth = min(max_rank, indices.shape[1])
    ranks = np.arange(1, depth + 1)
    cmc = (first_hit[valid, None] <= ranks[None, :]).mean(axis=0)
    return RankingResult(
        cmc=cmc.astype(np.float64),
        average_precision=ap[valid],
        inverse_negative_penalty=inp[valid],
        valid_queries=valid.astype(np.int64),
        num_queries=len(q_pids),
    )


def _score_rows(
    indices: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    total: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c, k) retrieved ids → per query: kept rank of the first match, AP@k, INP@k.

    The first-match rank is k + 1 (past any CMC rank) when no match was retrieved.
    """
    retrieved = indices >= 0
    safe = np.where(retrieved, indices, 0)
    same_pid = (g_pids[safe] == q_pids[:, None]) & retrieved
    same_cam = g_camids[safe] == q_camids[:, None]
    match = same_pid & ~same_cam
    kept = retrieved & ~(same_pid & same_cam)
    kept_rank = np.cumsum(kept, axis=1, dtype=np.int64)  # 1-based rank in the junk-free list
    hits = np.cumsum(match, axis=1, dtype=np.int64)
    found = hits[:, -1] if hits.shape[1] else np.zeros(len(indices), np.int64)
    big = indices.shape[1] + 1
    first_hit = np.where(match, kept_rank, big).min(axis=1, initial=big)
    precision_sum = np.where(match, hits / np.maximum(kept_rank, 1), 0.0).sum(axis=1)
    ap = precision_sum / np.maximum(total, 1)
    last_hit = np.where(match, kept_rank, 0).max(axis=1, initial=0)
    complete = (found == total) & (total > 0)
    inp = np.where(complete, total / np.maximum(last_hit, 1), 0.0)
    return first_hit, ap, inp


def _matches_in_gallery(
    q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray, g_camids: np.ndarray
) -> np.ndarray:
    """(q,) int64: gallery items with the query's id and another camera (its true matches)."""
    pid_keys, g_pid_codes = np.unique(g_pids, return_inverse=True)
    cam_keys, g_cam_codes = np.unique(g_camids, return_inverse=True)
    pair_keys, pair_counts = np.unique(
        g_pid_codes.astype(np.int64) * len(cam_keys) + g_cam_codes, return_counts=True
    )
    pid_counts = np.bincount(g_pid_codes, minlength=len(pid_keys))
    q_pid_codes, pid_found = _codes(pid_keys, q_pids)
    q_cam_codes, cam_found = _codes(cam_keys, q_camids)
    same_pid = np.where(pid_found, pid_counts[q_pid_codes], 0)
    q_pairs = q_pid_codes * len(cam_keys) + q_cam_codes
    pair_codes, pair_found = _codes(pair_keys, q_pairs)
    same_pair = np.where(pid_found & cam_found & pair_found, pair_counts[pair_codes], 0)
    return (same_pid - same_pair).astype(np.int64)


def _codes(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `values` in the sorted unique `keys`, and whether each is present."""
    positions = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return positions.astype(np.int64), keys[positions] == values


def _check_lengths(feats: np.ndarray, pids: np.ndarray, camids: np.ndarray, role: str) -> None:
    if len(pids) != len(feats) or len(camids) != len(feats):
        raise EvaluationError(
            f"{role} ids and cameras must have one entry per feature row ({len(feats)}); "
            f"got {len(pids)} ids and {len(camids)} cameras"
        )


def _check_top_k(
    distances: np.ndarray,
    indices: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int,
) -> np.ndarray:
    """Validate a search result against the ids; returns the indices as int64."""
    if distances.ndim != 2 or distances.shape != indices.shape:
        raise EvaluationError(
            f"distances {distances.shape} and indices {indices.shape} must be the same (q, k)"
        )
    if len(q_pids) != len(indices) or len(q_camids) != len(indices):
        raise EvaluationError(
            f"query ids and cameras must have one entry per search row ({len(indices)})"
        )
    if len(g_pids) != len(g_camids) or len(g_pids) == 0:
        raise EvaluationError("gallery ids and cameras must be non-empty and of equal length")
    if max_rank < 1:
        raise EvaluationError(f"max_rank must be >= 1; got {max_rank}")
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.max() >= len(g_pids) or indices.min() < -1):
        raise EvaluationError(
            f"search indices must be gallery ids in [0, {len(g_pids)}) or -1 for no hit"
        )
    return indices
