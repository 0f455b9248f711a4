"""Exact CMC, mAP and mINP under the Market-1501 protocol, without sorting the gallery.

Protocol (per query): gallery items with the query's identity *and* camera are junk and removed;
the matches are the remaining items of the query's identity; a query without a match is skipped
(and counted). Ties are ordered by gallery index, as `np.argsort(kind="stable")` orders them.
AP = Σ_k P@k·r_k / Σ_k r_k over the full kept list (non-interpolated); INP = matches / rank of the
hardest match; CMC[k] = fraction of evaluated queries whose first match has rank ≤ k + 1. CMC is
defined for every rank up to `max_rank`, also past the end of a short gallery (it stays at its
last value there; the reference crashes or reads stale memory in that case).

Only the ranks of the matches matter, so no row is sorted. A row's matches are few: their
distances are gathered through the gallery grouped by identity and sorted. Items after the
hardest match never change a rank, so one vectorised compare per chunk of rows selects the
few candidates ahead of it; each candidate is located among its row's sorted matches with one
`searchsorted` over int64 keys (row, monotone float bits, gallery index) that encode the stable
order exactly, and a per-row cumulative count turns the locations into ranks.
"""

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.ranking_cuhk03 import SingleShotSampler

RankingProtocol = Literal["market1501", "cuhk03_single_shot"]

_CHUNK_ROWS = 256
"""Rows ranked together at most; measured flat between 64 and 1024 rows on Market."""
_CHUNK_CELLS = 1 << 22
"""Distances ranked together at most: bounds the compare mask and the candidate arrays of
one chunk (tens of MB) for galleries of millions."""
_MAX_THREADS = 2
"""Threads over row chunks (numpy releases the GIL); the target machine has 2 cores."""


@dataclass(frozen=True)
class RankingResult:
    """Per-query ranking metrics of the evaluated (not skipped) queries.

    cmc (max_rank,): fraction of evaluated queries with a match in the top k = 1..max_rank;
    average_precision, inverse_negative_penalty (num_valid,): AP and INP per evaluated query;
    valid_queries (num_valid,): their indices into the query arrays, ascending;
    num_queries: all queries, skipped ones included.
    """

    cmc: np.ndarray
    average_precision: np.ndarray
    inverse_negative_penalty: np.ndarray
    valid_queries: np.ndarray
    num_queries: int

    @property
    def mAP(self) -> float:  # noqa: N802 - the metric's usual name
        return float(self.average_precision.mean())

    @property
    def mINP(self) -> float:  # noqa: N802 - the metric's usual name
        return float(self.inverse_negative_penalty.mean())

    @property
    def num_valid_queries(self) -> int:
        return len(self.valid_queries)

    @property
    def num_skipped_queries(self) -> int:
        return self.num_queries - len(self.valid_queries)

    def rank(self, k: int) -> float:
        """CMC at rank k (1-based): the fraction of evaluated queries matched in the top k."""
        if not 1 <= k <= len(self.cmc):
            raise EvaluationError(f"CMC rank {k} is outside the computed ranks 1..{len(self.cmc)}.")
        return float(self.cmc[k - 1])


@dataclass(frozen=True)
class _Gallery:
    """Gallery ids and cameras (g,), with its indices grouped by identity.

    pid_order (g,): gallery indices sorted by identity, stable (gallery order within one);
    unique_pids, pid_starts, pid_counts (num_pids,): the identities and their groups.
    col_bits: bits that hold a gallery index in a sort key.
    """

    pids: np.ndarray
    camids: np.ndarray
    pid_order: np.ndarray
    unique_pids: np.ndarray
    pid_starts: np.ndarray
    pid_counts: np.ndarray
    col_bits: int

    @staticmethod
    def build(pids: np.ndarray, camids: np.ndarray) -> "_Gallery":
        order = np.argsort(pids, kind="stable")
        unique, starts, counts = np.unique(pids[order], return_index=True, return_counts=True)
        col_bits = max(1, (len(pids) - 1).bit_length())
        return _Gallery(pids, camids, order, unique, starts, counts, col_bits)

    def chunk_rows(self) -> int:
        """Rows ranked together: memory-bounded, and each row index must fit in a sort key's
        top 63 − 32 − col_bits bits."""
        by_memory = _CHUNK_CELLS // max(len(self.pids), 1)
        return max(1, min(_CHUNK_ROWS, by_memory, 1 << (31 - self.col_bits)))


@dataclass(frozen=True)
class _Matches:
    """The valid matches of a chunk's rows, grouped by row, each group in gallery order.

    rows, cols, dists (n,): local row, gallery index and distance of each match;
    counts (c,): matches per row; pid_slots (c,): each query's identity as an index into the
    gallery identities (meaningless where counts is 0).
    """

    rows: np.ndarray
    cols: np.ndarray
    dists: np.ndarray
    counts: np.ndarray
    pid_slots: np.ndarray


def _as_column(name: str, values: np.ndarray, length: int, expected: str) -> np.ndarray:
    """values as int64 (length,); `expected` says where the length comes from, for the error."""
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != length:
        raise EvaluationError(f"{name} has shape {array.shape} but {expected}.")
    return array.astype(np.int64, copy=False)


def _sort_keys(rows: np.ndarray, dists: np.ndarray, cols: np.ndarray, col_bits: int) -> np.ndarray:
    """int64 keys (n,) ordered as (row, distance, gallery index): the stable rank order.

    A float32's bit pattern, read as int32, is monotone for non-negative values; negative values
    (cosine distances rounding below 0) get their magnitude bits flipped to stay monotone.
    """
    bits = (dists + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into +0.0
    monotone = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).astype(np.int64) + (1 << 31)
    return (rows << (32 + col_bits)) | (monotone << col_bits) | cols


def _gather_matches(
    distances: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray, gallery: _Gallery
) -> _Matches:
    """Each row's valid matches (same identity, other camera), through the grouped gallery."""
    slots = np.searchsorted(gallery.unique_pids, q_pids)
    slots = np.minimum(slots, len(gallery.unique_pids) - 1)  # the gallery is not empty
    found = gallery.unique_pids[slots] == q_pids
    same_pid = np.where(found, gallery.pid_counts[slots], 0)
    rows = np.repeat(np.arange(len(q_pids)), same_pid)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(same_pid) - same_pid, same_pid)
    cols = gallery.pid_order[np.repeat(gallery.pid_starts[slots], same_pid) + within]
    keep = gallery.camids[cols] != q_camids[rows]
    rows, cols = rows[keep], cols[keep]
    dists = distances[rows, cols]
    if np.isnan(dists).any():
        raise EvaluationError("The distances between some queries and their matches are NaN.")
    counts = np.bincount(rows, minlength=len(q_pids))
    return _Matches(rows, cols, dists, counts, slots)


def _negatives_ahead(
    distances: np.ndarray, q_pids: np.ndarray, hardest: np.ndarray, gallery: _Gallery
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items of other identities not after each row's hardest match: the only ones that can
    precede a match. Returns their local rows, gallery indices and sort keys, (m,) each."""
    # One compare pass; flatnonzero of the mask is far faster than a 2-D nonzero.
    flat = np.flatnonzero(distances <= hardest[:, None])
    num_g = distances.shape[1]
    rows = flat // num_g
    cols = flat - rows * num_g
    negative = gallery.pids[cols] != q_pids[rows]  # matches are counted apart, junk never
    rows, cols, flat = rows[negative], cols[negative], flat[negative]
    return rows, cols, _sort_keys(rows, distances.reshape(-1)[flat], cols, gallery.col_bits)


def _match_ranks(
    sorted_keys: np.ndarray,
    counts: np.ndarray,
    negative_rows: np.ndarray,
    negative_keys: np.ndarray,
) -> np.ndarray:
    """1-based ranks (n,) of the matches in their kept lists, from their sorted keys (n,),
    their number per row (c,) and the rows and keys (m,) of the negatives ahead of them."""
    ends = np.cumsum(counts)
    starts = ends - counts
    slot = np.searchsorted(sorted_keys, negative_keys)  # the first match after each negative
    slot = slot[slot < ends[negative_rows]]  # ties with the hardest match, larger gallery index
    before = np.cumsum(np.bincount(slot, minlength=len(sorted_keys)))
    row_of = np.repeat(np.arange(len(counts)), counts)
    base = np.concatenate(([0], before))[starts][row_of]
    position = np.arange(len(sorted_keys)) - starts[row_of]
    return position + 1 + before - base


@dataclass(frozen=True)
class _ChunkResult:
    valid_rows: np.ndarray  # (v,) local rows with at least one valid match
    average_precision: np.ndarray  # (v,)
    inverse_negative_penalty: np.ndarray  # (v,)
    rank_histogram: np.ndarray  # (max_rank + 1,) first-match ranks; last bin: > max_rank


def _evaluate_chunk(
    distances: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    gallery: _Gallery,
    max_rank: int,
    sampler: SingleShotSampler | None,
) -> _ChunkResult:
    """Metrics of one chunk: distances (c, g), q_pids and q_camids (c,)."""
    empty = np.zeros(0, dtype=np.float64)
    nothing = _ChunkResult(np.zeros(0, np.int64), empty, empty, np.zeros(max_rank + 1))
    if distances.shape[1] == 0:
        return nothing
    matches = _gather_matches(distances, q_pids, q_camids, gallery)
    valid = np.flatnonzero(matches.counts)
    if len(valid) == 0:
        return nothing
    counts = matches.counts[valid]
    keys = _sort_keys(matches.rows, matches.dists, matches.cols, gallery.col_bits)
    order = np.argsort(keys)
    hardest = np.full(len(distances), np.nan, dtype=np.float32)  # NaN selects nothing
    hardest[valid] = matches.dists[order[np.cumsum(counts) - 1]]
    negatives = _negatives_ahead(distances, q_pids, hardest, gallery)
    ranks = _match_ranks(keys[order], matches.counts, negatives[0], negatives[2])
    starts = np.cumsum(counts) - counts
    within = np.arange(len(ranks)) - np.repeat(starts, counts)
    average_precision = np.add.reduceat((within + 1) / ranks, starts) / counts
    inverse_negative_penalty = counts / ranks[starts + counts - 1]
    if sampler is None:
        first = np.minimum(ranks[starts], max_rank + 1)
        histogram = np.bincount(first - 1, minlength=max_rank + 1).astype(np.float64)
    else:
        histogram = sampler.rank_histogram(
            valid, matches.pid_slots[valid], keys, counts, negatives, max_rank
        )
    return _ChunkResult(valid, average_precision, inverse_negative_penalty, histogram)


class RankingAccumulator:
    """Streams query chunks against one gallery; `result()` gives the metrics of all of them.

    The distances are never held whole: `add` takes any number of query rows at a time, and the
    result does not depend on how the queries were chunked (the CUHK03 samples are drawn once).
    g_pids, g_camids (g,): gallery identities and cameras. protocol "cuhk03_single_shot" reads
    the CMC from `cuhk03_repeats` draws of one gallery image per identity (seeded by `seed`).
    """

    def __init__(
        self,
        g_pids: np.ndarray,
        g_camids: np.ndarray,
        *,
        max_rank: int = 50,
        protocol: RankingProtocol = "market1501",
        cuhk03_repeats: int = 10,
        seed: int = 0,
    ) -> None:
        g_pids = np.asarray(g_pids)
        g_pids = _as_column("g_pids", g_pids, len(g_pids), "it must be one id per gallery item")
        g_camids = _as_column("g_camids", g_camids, len(g_pids), f"g_pids has {len(g_pids)} items")
        if max_rank < 1:
            raise EvaluationError(f"max_rank must be at least 1, got {max_rank}.")
        if protocol not in ("market1501", "cuhk03_single_shot"):
            raise EvaluationError(
                f"Unknown ranking protocol {protocol!r}; use 'market1501' or 'cuhk03_single_shot'."
            )
        if protocol == "cuhk03_single_shot" and cuhk03_repeats < 1:
            raise EvaluationError(f"cuhk03_repeats must be at least 1, got {cuhk03_repeats}.")
        self._gallery = _Gallery.build(g_pids, g_camids)
        self._max_rank = max_rank
        self._sampler: SingleShotSampler | None = None
        if protocol == "cuhk03_single_shot" and len(g_pids):
            gallery = self._gallery
            self._sampler = SingleShotSampler(
                gallery.pid_order,
                gallery.pid_starts,
                gallery.pid_counts,
                repeats=cuhk03_repeats,
                seed=seed,
            )
        self._histogram = np.zeros(max_rank + 1, dtype=np.float64)
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._num_queries = 0

    def add(self, distances: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray) -> None:
        """Adds c queries: distances (c, g) to the gallery, q_pids and q_camids (c,)."""
        distances = np.asarray(distances)
        if distances.ndim != 2 or distances.shape[1] != len(self._gallery.pids):
            raise EvaluationError(
                f"The distances have shape {distances.shape} but the gallery has "
                f"{len(self._gallery.pids)} items; expected (queries, {len(self._gallery.pids)})."
            )
        # Keys read float32 bits; C order makes each chunk's flat indices row-major.
        distances = np.ascontiguousarray(distances, dtype=np.float32)
        expected = f"the distances have {len(distances)} query rows"
        q_pids = _as_column("q_pids", q_pids, len(distances), expected)
        q_camids = _as_column("q_camids", q_camids, len(distances), expected)
        for lo, part in zip(
            self._row_starts(len(distances)),
            self._map_chunks(distances, q_pids, q_camids),
            strict=True,
        ):
            self._histogram += part.rank_histogram
            rows = part.valid_rows + self._num_queries + lo
            self._parts.append((rows, part.average_precision, part.inverse_negative_penalty))
        self._num_queries += len(distances)

    def result(self) -> RankingResult:
        """The metrics of every query added so far; EvaluationError if all were skipped."""
        valid = np.concatenate([rows for rows, _, _ in self._parts] or [np.zeros(0, np.int64)])
        if self._num_queries == 0:
            raise EvaluationError("No query was added, so there is no ranking to evaluate.")
        if len(valid) == 0:
            raise EvaluationError(
                f"All {self._num_queries} queries were skipped: none has a gallery item of its "
                "identity from another camera."
            )
        return RankingResult(
            cmc=np.cumsum(self._histogram)[: self._max_rank] / len(valid),
            average_precision=np.concatenate([ap for _, ap, _ in self._parts]),
            inverse_negative_penalty=np.concatenate([inp for _, _, inp in self._parts]),
            valid_queries=valid.astype(np.int64),
            num_queries=self._num_queries,
        )

    def _row_starts(self, num_rows: int) -> range:
        return range(0, num_rows, self._gallery.chunk_rows())

    def _map_chunks(
        self, distances: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray
    ) -> Iterator[_ChunkResult]:
        """Chunk results in row order; numpy releases the GIL, so threads use every core."""
        step = self._gallery.chunk_rows()

        def run(lo: int) -> _ChunkResult:
            rows = slice(lo, lo + step)
            return _evaluate_chunk(
                distances[rows],
                q_pids[rows],
                q_camids[rows],
                self._gallery,
                self._max_rank,
                self._sampler,
            )

        starts = self._row_starts(len(distances))
        workers = min(_MAX_THREADS, os.cpu_count() or 1, len(starts))
        if workers <= 1:
            yield from map(run, starts)
            return
        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(run, starts)


def evaluate_ranking(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    max_rank: int = 50,
    protocol: RankingProtocol = "market1501",
    cuhk03_repeats: int = 10,
    seed: int = 0,
) -> RankingResult:
    """CMC (ranks 1..max_rank), per-query AP and INP from distmat (q, g), smaller = closer.

    q_pids, q_camids (q,) and g_pids, g_camids (g,): identities and cameras. Distances are
    compared in float32. Raises EvaluationError on mismatched shapes or when every query is
    skipped (no gallery item of its identity from another camera).
    """
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise EvaluationError(
            f"distmat must be a 2-D (queries, gallery) array, got {distmat.shape}."
        )
    g_pids = _as_column(
        "g_pids", g_pids, distmat.shape[1], f"distmat has {distmat.shape[1]} gallery columns"
    )
    accumulator = RankingAccumulator(
        g_pids,
        g_camids,
        max_rank=max_rank,
        protocol=protocol,
        cuhk03_repeats=cuhk03_repeats,
        seed=seed,
    )
    accumulator.add(distmat, q_pids, q_camids)
    return accumulator.result()
