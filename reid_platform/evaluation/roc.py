"""ROC of a distance matrix: TAR at fixed FAR, the curve, and genuine/impostor histograms.

Convention (ours: the usual verification TAR@FAR). A (query, gallery) pair is *genuine* when both
images have the same pid and different cameras, *impostor* when the pids differ; same pid + same
camera pairs are excluded (the Market-1501 junk rule). A pair is accepted at threshold t when its
distance ≤ t; FAR(t) = accepted impostors / impostors, TAR(t) = accepted genuine / genuine.
TAR@FAR=x is the largest TAR(t) over thresholds with FAR(t) ≤ x (`count / num_impostor <= x` in
float64), exactly: the fraction of genuine distances strictly below the (k+1)-th smallest impostor
distance, k the largest impostor count allowed by x (a genuine pair at exactly that distance is
rejected: accepting it would accept that impostor too).

The reference toolbox (fastreid, notes §3.3) labels the classes the other way round: same-id pairs
get label 0, different-id pairs label 1, scored by distance, and it reads sklearn's `roc_curve` at
the FPR nearest the target. Its "TPR@FPR=x" is a true-rejection rate of impostor pairs at a
false-rejection rate x of genuine pairs, not comparable with TAR@FAR here.

Method (exact, never sorting the q·g impostor distances; row chunks over a few threads):
1. one pass finds the smallest and largest distance, lo and hi;
2. one pass puts every distance into F ≥ 65,536 fine buckets by one monotone float expression,
   b(d) = min(trunc((d − lo)·s), F − 1), and gathers the (few) same-pid distances exactly; the
   impostor counts are the bucket counts minus those of the same-pid distances;
3. the cumulative counts give the bucket of each needed impostor rank, and a last pass collects
   the distances in those few buckets only, where the rank is selected exactly.
Bucket j is exactly the float interval [edge j, edge j+1), edge j being the smallest float d with
b(d) ≥ j (found by bisection over the floats), so counts at edges are exact.

The curve is exact at each of its points: (0, 0), the FAR targets' points, (0, TAR@FAR=0), and the
thresholds just below every bucket edge (cumulative bucket counts there), thinned to the points
where TAR, FAR or log10 FAR crosses one of `curve_points` equal steps: at most about
3·curve_points + len(far_targets) + 2 points, far ascending from (0, 0) to (1, 1). The histograms
count genuine and impostor distances over shared edges (whole groups of buckets) from lo to hi.
"""

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from reid_platform.errors import EvaluationError
from reid_platform.metric_names import FAR_TARGETS

_MIN_FINE_BINS = 65536
"""Fewest fine buckets; more buckets leave fewer distances for the exact selection pass."""

_CHUNK_ELEMENTS = 1 << 18
"""Distances per row chunk: each worker's temporaries (reused buffers) stay in its cache."""

_T = TypeVar("_T")
Chunk = tuple[int, np.ndarray]
"""(first query row, a (rows, g) view of distmat)."""


@dataclass(frozen=True)
class RocResult:
    """ROC of genuine vs impostor pairs (convention in the module docstring).

    far, tar: (n_points,) float64, far ascending from 0 to 1, tar from 0 to 1.
    thresholds: (n_points,) distances in the distmat's float dtype; a pair is accepted when its
        distance ≤ threshold, and (far[i], tar[i]) are the exact rates at thresholds[i].
    tar_at_far: {far target: TAR@FAR}; threshold_at_far: {far target: the largest threshold
        with FAR ≤ target} (the last histogram edge when every impostor may be accepted).
    bin_edges: (bins + 1,) shared histogram edges, the last bin closed.
    genuine_counts, impostor_counts: (bins,) int64 pair counts per bin.
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    tar_at_far: dict[float, float]
    threshold_at_far: dict[float, float]
    num_genuine: int
    num_impostor: int
    bin_edges: np.ndarray
    genuine_counts: np.ndarray
    impostor_counts: np.ndarray


@dataclass(frozen=True)
class _Buckets:
    """The fine bucket function b(d) = min(trunc((d − lo)·scale), count − 1) over [lo, hi]."""

    lo: np.floating[Any]
    hi: np.floating[Any]
    scale: np.floating[Any]
    count: int

    def raw(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Unclipped bucket indices (int32, 0 … count) of `values` (distmat dtype, any shape).

        The one expression every pass and the edge bisection use, so a distance always lands in
        the same bucket; `out` (float, like `values`) saves an allocation. int32, because the
        float to int64 cast has no vector instruction without AVX-512.
        """
        shifted = np.subtract(values, self.lo, out=out)
        np.multiply(shifted, self.scale, out=shifted)
        return shifted.astype(np.int32)

    def index(self, values: np.ndarray) -> np.ndarray:
        return np.minimum(self.raw(values), self.count - 1)

    def edges(self, which: np.ndarray) -> np.ndarray:
        """Exact edges (which.shape) for edge numbers 0 … count: edge j is the smallest float d
        with b(d) ≥ j, so bucket j holds exactly [edge j, edge j+1); edge count is hi.

        Found by bisection over the floats' order-preserving unsigned-integer keys.
        """
        ftype = type(self.lo)
        utype = np.uint32 if np.dtype(ftype).itemsize == 4 else np.uint64
        sign = utype(1) << utype(8 * np.dtype(ftype).itemsize - 1)

        def to_key(values: np.ndarray) -> np.ndarray:
            bits = values.view(utype)
            return np.where(np.bitwise_and(bits, sign), np.invert(bits), np.bitwise_or(bits, sign))

        def from_key(keys: np.ndarray) -> np.ndarray:
            bits = np.where(np.bitwise_and(keys, sign), np.bitwise_xor(keys, sign), ~keys)
            return bits.astype(utype).view(ftype)

        low = np.full(which.shape, to_key(np.array([self.lo]))[0])  # b(low) < j for j ≥ 1
        high = np.full(which.shape, to_key(np.array([self.hi]))[0])  # b(high) = count − 1 ≥ j
        inner = (which > 0) & (which < self.count)
        while np.any(inner & (high - low > 1)):
            mid = low + (high - low) // utype(2)
            above = self.index(from_key(mid)) >= which
            high = np.where(above, mid, high)
            low = np.where(above, low, mid)
        return np.where(which == 0, self.lo, from_key(high)).astype(ftype)


@dataclass(frozen=True)
class _Pairs:
    """Pair counts; query i's same-pid gallery items are gallery_order[start[i]:][:count[i]]."""

    gallery_order: np.ndarray
    start: np.ndarray
    count: np.ndarray
    num_genuine: int
    num_impostor: int


def evaluate_roc(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    far_targets: Sequence[float] = FAR_TARGETS,
    histogram_bins: int = 100,
    curve_points: int = 1000,
) -> RocResult:
    """ROC, TAR@FAR and distance histograms of `distmat` (q, g), smaller = more similar.

    q_pids, q_camids: (q,) ints; g_pids, g_camids: (g,) ints. far_targets: rates in [0, 1].
    Memory beyond `distmat`: the same-pid distances plus small per-thread buffers.
    """
    distmat = _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    _check_options(far_targets, histogram_bins, curve_points)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    pairs = _count_pairs(np.asarray(q_pids), np.asarray(g_pids), q_camids, g_camids)
    rows = max(1, _CHUNK_ELEMENTS // max(distmat.shape[1], 1))
    chunks = [(r, distmat[r : r + rows]) for r in range(0, distmat.shape[0], rows)]
    buckets = _make_buckets(*_min_max(chunks), distmat.dtype.type, histogram_bins)
    all_counts, genuine, excluded = _bucket_pass(chunks, buckets, pairs, q_camids, g_camids)
    genuine.sort()
    same_pid = np.concatenate([genuine, excluded])
    genuine_counts = np.bincount(buckets.index(genuine), minlength=buckets.count)
    impostor_counts = all_counts - np.bincount(buckets.index(same_pid), minlength=buckets.count)
    ranks = {x: _allowed_count(x, pairs.num_impostor) for x in far_targets}
    selected = _select_impostors(chunks, buckets, impostor_counts, same_pid, [0, *ranks.values()])
    points = {
        x: _operating_point(k, selected, genuine, buckets.hi, pairs) for x, k in ranks.items()
    }
    fixed = [_operating_point(0, selected, genuine, buckets.hi, pairs), *points.values()]
    curve = _curve(buckets, impostor_counts, genuine_counts, fixed, curve_points, pairs)
    group = buckets.count // histogram_bins
    return RocResult(
        far=curve[0],
        tar=curve[1],
        thresholds=curve[2],
        tar_at_far={x: point[1] for x, point in points.items()},
        threshold_at_far={x: float(point[2]) for x, point in points.items()},
        num_genuine=pairs.num_genuine,
        num_impostor=pairs.num_impostor,
        bin_edges=buckets.edges(np.arange(0, buckets.count + 1, group)),
        genuine_counts=genuine_counts.reshape(histogram_bins, group).sum(axis=1),
        impostor_counts=impostor_counts.reshape(histogram_bins, group).sum(axis=1),
    )


def _check_inputs(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> np.ndarray:
    """The distance matrix as float32/float64 after checking every array's shape."""
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise EvaluationError(f"distmat must be a 2-D (query, gallery) array, got {distmat.shape}.")
    q, g = distmat.shape
    arrays = {"q_pids": q_pids, "q_camids": q_camids, "g_pids": g_pids, "g_camids": g_camids}
    for name, array in arrays.items():
        size = q if name.startswith("q") else g
        if np.shape(array) != (size,):
            raise EvaluationError(
                f"{name} has shape {np.shape(array)}, distmat {q, g} needs ({size},)."
            )
    return distmat if distmat.dtype in (np.float32, np.float64) else distmat.astype(np.float32)


def _check_options(far_targets: Sequence[float], histogram_bins: int, curve_points: int) -> None:
    if any(not 0.0 <= x <= 1.0 for x in far_targets):
        raise EvaluationError(f"far_targets must lie in [0, 1], got {tuple(far_targets)}.")
    if histogram_bins < 1 or curve_points < 1:
        raise EvaluationError(
            f"histogram_bins and curve_points must be ≥ 1, got {histogram_bins}, {curve_points}."
        )


def _count_pairs(
    q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray
) -> _Pairs:
    """Same-pid gallery lists per query and the pair counts, without any (q, g) array."""
    order = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[order]
    start = np.searchsorted(sorted_pids, q_pids, side="left")
    count = np.searchsorted(sorted_pids, q_pids, side="right") - start
    # Same pid + same camera pairs, counted through one id per (pid, camid) combination.
    pid_ids = np.unique(np.concatenate([q_pids, g_pids]), return_inverse=True)[1]
    cam_ids = np.unique(np.concatenate([q_camids, g_camids]), return_inverse=True)[1]
    cam_count = int(cam_ids.max(initial=0)) + 1
    key = pid_ids.astype(np.int64) * cam_count + cam_ids
    per_key = np.bincount(key[len(q_pids) :], minlength=int(key.max(initial=0)) + 1)
    same_cam = int(per_key[key[: len(q_pids)]].sum())
    num_genuine = int(count.sum()) - same_cam
    num_impostor = len(q_pids) * len(g_pids) - int(count.sum())
    if num_genuine == 0:
        raise EvaluationError("No genuine pair (same pid, different camera) in query × gallery.")
    if num_impostor == 0:
        raise EvaluationError("No impostor pair (different pids) in query × gallery.")
    return _Pairs(order, start, count, num_genuine, num_impostor)


def _per_worker(chunks: list[Chunk], work: Callable[[list[Chunk]], _T]) -> list[_T]:
    """`work` on interleaved shares of the chunks, one thread per torch thread.

    numpy releases the GIL in the heavy loops; each worker reduces its own share, so memory
    stays bounded by one chunk's temporaries per worker.
    """
    workers = max(1, min(torch.get_num_threads(), os.cpu_count() or 1, len(chunks)))
    if workers == 1:
        return [work(chunks)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, [chunks[w::workers] for w in range(workers)]))


def _min_max(chunks: list[Chunk]) -> tuple[float, float]:
    def work(share: list[Chunk]) -> list[tuple[float, float]]:
        return [(float(c.min()), float(c.max())) for _, c in share]

    extremes = np.array([e for share in _per_worker(chunks, work) for e in share])
    lo, hi = float(extremes[:, 0].min()), float(extremes[:, 1].max())  # NaN propagates
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise EvaluationError("distmat contains NaN or infinite distances.")
    return lo, hi


def _make_buckets(lo: float, hi: float, ftype: type, histogram_bins: int) -> _Buckets:
    """At least _MIN_FINE_BINS fine buckets over [lo, hi], a whole number per histogram bin."""
    group = -(-_MIN_FINE_BINS // histogram_bins)
    count = group * histogram_bins
    span = (lo, hi)
    with np.errstate(over="ignore", divide="ignore"):
        scale = ftype(count) / (ftype(hi) - ftype(lo))
        if not (hi > lo and np.isfinite(scale) and scale > 0):
            # All distances (nearly) equal: widen the range so that the buckets stay defined.
            pad = max(1.0, abs(lo), abs(hi))
            lo, hi = lo - pad, hi + pad
            scale = ftype(count) / (ftype(hi) - ftype(lo))
    if not (np.isfinite(scale) and scale > 0):
        raise EvaluationError(f"distmat's distances span {span}, too wide for its dtype.")
    return _Buckets(lo=ftype(lo), hi=ftype(hi), scale=scale, count=count)


def _bucket_pass(
    chunks: list[Chunk],
    buckets: _Buckets,
    pairs: _Pairs,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket counts of all distances (count,), and the genuine and same-camera same-pid
    distances, each gathered exactly (1-D, distmat dtype)."""

    def work(share: list[Chunk]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        counts = np.zeros(buckets.count + 1, dtype=np.int64)  # d = hi may round to `count`
        genuine, excluded = [], []
        buffer = np.empty(_CHUNK_ELEMENTS, type(buckets.lo))
        for first, chunk in share:
            out = buffer[: chunk.size].reshape(chunk.shape) if chunk.size <= buffer.size else None
            np.add.at(counts, buckets.raw(chunk, out).ravel(), 1)  # faster than bincount here
            rows, cols = _same_pid_pairs(pairs, first, len(chunk))
            values = chunk[rows, cols]
            other_camera = q_camids[first + rows] != g_camids[cols]
            genuine.append(values[other_camera])
            excluded.append(values[~other_camera])
        counts[-2] += counts[-1]
        return counts[:-1], genuine, excluded

    results = _per_worker(chunks, work)
    counts = sum((r[0] for r in results), np.zeros(buckets.count, dtype=np.int64))
    genuine = np.concatenate([v for r in results for v in r[1]])
    excluded = np.concatenate([v for r in results for v in r[2]])
    return counts, genuine, excluded


def _same_pid_pairs(pairs: _Pairs, first: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row within the chunk, gallery column) of every same-pid pair of queries first…first+rows."""
    count = pairs.count[first : first + rows]
    row = np.repeat(np.arange(rows), count)
    offset = np.repeat(pairs.start[first : first + rows] - (np.cumsum(count) - count), count)
    return row, pairs.gallery_order[offset + np.arange(int(count.sum()))]


def _allowed_count(far: float, num_impostor: int) -> int:
    """The largest impostor count k with k / num_impostor ≤ far (float64 comparison)."""
    k = min(max(math.floor(far * num_impostor), 0), num_impostor)
    while k < num_impostor and (k + 1) / num_impostor <= far:
        k += 1
    while k > 0 and k / num_impostor > far:
        k -= 1
    return k


def _select_impostors(
    chunks: list[Chunk],
    buckets: _Buckets,
    impostor_counts: np.ndarray,
    same_pid: np.ndarray,
    ranks: list[int],
) -> dict[int, tuple[Any, int]]:
    """{rank k (0-based): (the (k+1)-th smallest impostor distance, impostors below it)} for
    the ranks below the number of impostors.

    Only the distances in the buckets holding the ranks are collected; the same-pid distances
    among them are removed as a multiset.
    """
    cumulative = np.cumsum(impostor_counts)
    ranks = sorted({k for k in ranks if k < cumulative[-1]})
    bins = np.searchsorted(cumulative, ranks, side="right")
    wanted = np.unique(bins)
    last = int(wanted[-1])
    upper = buckets.edges(np.array([last + 1]))[0]
    inclusive = last == buckets.count - 1  # the last bucket is closed at hi

    def work(share: list[Chunk]) -> list[np.ndarray]:
        found = []
        below = np.empty(_CHUNK_ELEMENTS, dtype=bool)
        for _, chunk in share:
            mask = below[: chunk.size].reshape(chunk.shape) if chunk.size <= below.size else None
            mask = (np.less_equal if inclusive else np.less)(chunk, upper, out=mask)
            if mask.any():
                values = chunk[mask]
                found.append(values[np.isin(buckets.index(values), wanted)])
        return found

    found = [v for share in _per_worker(chunks, work) for v in share]
    candidates = np.concatenate(found) if found else np.empty(0, type(buckets.lo))
    cand_bins, same_bins = buckets.index(candidates), buckets.index(same_pid)
    selected: dict[int, tuple[Any, int]] = {}
    for k, b in zip(ranks, bins.tolist(), strict=True):
        impostors = _multiset_difference(candidates[cand_bins == b], same_pid[same_bins == b])
        before = int(cumulative[b - 1]) if b > 0 else 0
        value = impostors[k - before]
        selected[k] = (value, before + int(np.searchsorted(impostors, value, side="left")))
    return selected


def _multiset_difference(values: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Sorted `values` minus `removed` (a sub-multiset of `values`), repeats kept."""
    unique, counts = np.unique(values, return_counts=True)
    gone, gone_counts = np.unique(removed, return_counts=True)
    counts[np.searchsorted(unique, gone)] -= gone_counts
    return np.repeat(unique, counts)


def _operating_point(
    k: int, selected: dict[int, tuple[Any, int]], genuine: np.ndarray, hi: Any, pairs: _Pairs
) -> tuple[float, float, Any]:
    """(far, tar, threshold) at the largest threshold accepting at most k impostors."""
    if k >= pairs.num_impostor:
        return 1.0, 1.0, hi
    value, below = selected[k]
    accepted = int(np.searchsorted(genuine, value, side="left"))  # strictly below the impostor
    return below / pairs.num_impostor, accepted / pairs.num_genuine, np.nextafter(value, -np.inf)


def _curve(
    buckets: _Buckets,
    impostor_counts: np.ndarray,
    genuine_counts: np.ndarray,
    fixed: list[tuple[float, float, Any]],
    curve_points: int,
    pairs: _Pairs,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds): (0, 0), the `fixed` points and the points just below every bucket
    edge, thinned to those where TAR, FAR or log10 FAR crosses a 1/curve_points step.

    Rates grow with the threshold, so ordering by (far, tar) is ordering by threshold; bucket
    edges (a bisection each) are computed only for the points kept.
    """
    start = (0.0, 0.0, np.nextafter(buckets.lo, -np.inf))
    fixed = list({(p[0], p[1]): p for p in reversed([start, *fixed])}.values())  # distinct rates
    far = np.concatenate([[p[0] for p in fixed], np.cumsum(impostor_counts) / pairs.num_impostor])
    tar = np.concatenate([[p[1] for p in fixed], np.cumsum(genuine_counts) / pairs.num_genuine])
    bucket = np.concatenate([-1 - np.arange(len(fixed)), np.arange(buckets.count)])  # fixed < 0
    order = np.lexsort((bucket >= 0, tar, far))  # a fixed point first among equal rates
    far, tar, bucket = far[order], tar[order], bucket[order]
    decades = max(math.log10(pairs.num_impostor), 1.0)
    with np.errstate(divide="ignore"):
        log_far = np.where(far > 0, np.log10(far) / decades + 1.0, -1.0)
    cells = np.floor(np.stack([tar, far, log_far]) * curve_points)
    crossed = np.concatenate([[True], np.any(cells[:, 1:] != cells[:, :-1], axis=0)])
    keep = (bucket < 0) | crossed
    far, tar, bucket = far[keep], tar[keep], bucket[keep]
    thresholds = np.empty(len(bucket), type(buckets.lo))
    thresholds[bucket < 0] = [fixed[-1 - b][2] for b in bucket[bucket < 0]]
    inner = (bucket >= 0) & (bucket < buckets.count - 1)
    thresholds[inner] = np.nextafter(buckets.edges(bucket[inner] + 1), -np.inf)
    thresholds[bucket == buckets.count - 1] = buckets.hi  # the last bucket is closed at hi
    return far, tar, thresholds
