"""Exact k nearest neighbours of every row among all rows, from half of a low-rank bound product.

With the projection bound of `rerank_projected_search` (basis P, projections p, residual norms
a), the upper bound hi_ij = scale·S_ij − bias_j comes from a *symmetric* matrix S = F Fᵀ,
F = [p, a] (n, rank + 1), so only its upper triangle is computed, and of it only group
maxima are kept, strip by strip (`knn_strip_maxima`: each row's GROUP-column groups partition
all n columns).

Per row, hi − 2·scale·a_i·max(a) is a lower bound on the exact score of the column where a
group attains its maximum, so the k-th largest group maximum, less that gap, is a threshold τ_i
that the row's k-th best exact score cannot fall below. Every column whose exact score reaches
τ_i has hi ≥ τ_i, so lies in a group whose maximum reaches τ_i: the members of those groups
have hi recomputed, those with hi ≥ τ_i are rescored exactly, and the best k of them are the
exact answer. Nothing has to be certified afterwards: a loose bound only makes the candidate
lists longer (`knn` still checks that every row got k). How long is capped: a strip whose
groups reaching τ hold more than CANDIDATE_BUDGET·n columns a row is answered by brute force
instead, and once most strips were, so are all the rows left, without their bound product.
Features sharing one dominant direction (e.g. from an untrained model) are caught before any
strip, by the bounds of a few rows (`_probe_share`). A strip's rows are
answered as soon as it is done (the earlier strips gave them their other maxima), one strip in
flight, while the next strips' chunks are computed (`knn_strip_maxima`): on a 2-thread host
both are tasks of a `kernel_pool` (single-threaded kernels, no spinning library threads),
elsewhere the calling thread computes the chunks and a worker answers. The maxima take
n²/(2·GROUP) floats at most. On the benchmark (Market scale, 19,281 rows) about 15 columns per
row are rescored (the pairs that are candidates both ways once: `_MutualDots`), and the half
bound product is most of the time.
"""

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np
import torch

from reid_platform.evaluation import knn_strip_maxima
from reid_platform.evaluation.kernel_pool import kernel_pool
from reid_platform.evaluation.knn_strip_maxima import GROUP, group_members, scaled, strip_maxima
from reid_platform.evaluation.rerank_pairs import inner_products_by_index
from reid_platform.evaluation.rerank_projected_search import (
    MAX_RESIDUAL_SHARE,
    PROJECTION_RANK,
    RELATIVE_TOLERANCE,
    projection_factors,
)
from reid_platform.evaluation.rerank_scores import ScoreSpace, brute_force_search, matmul_nt

OVERLAP = True
"""Answer a strip's rows while the next strip's bounds are computed: those steps are mostly
single-threaded numpy, which would leave the second core idle (measured on the 2-core host:
15-20% off the search; the kernel pool took another 15% off AQE)."""
THRESHOLD_MERGE = 4
"""Group maxima merged (by their maximum) before the k-th largest is picked for τ: a quarter of
the selection work, and the merged maxima still come from distinct columns."""
CANDIDATE_BUDGET = 1 / 8
"""Columns a row (on average over its strip) whose bounds are recomputed, as a share of n, above
which the strip is answered by brute force: past about 0.15 (measured, 8,192 rows of 512-d) the
bookkeeping per candidate costs more than the product, and the candidates (kept pairs
included) would grow towards n²."""
PROBE_ROWS = 64
"""Rows, spread evenly, whose bounds against all columns estimate up front how loose they are."""
LOOSE_STRIPS_TO_STOP = 2
"""Strips over the budget after which, when they are most of those answered so far, the rows
left are answered by brute force without their bound product."""


def _merged(maxima: np.ndarray, axis: int) -> np.ndarray:
    """Slot g merged with g + w, g + 2w, ... along `axis` (by their maximum; distinct columns
    still), w = ⌈slots / THRESHOLD_MERGE⌉, an elementwise maximum of contiguous blocks."""
    slots = np.moveaxis(maxima, axis, 0)  # a view, the memory layout unchanged
    width = -(-slots.shape[0] // THRESHOLD_MERGE)
    merged = np.array(slots[:width], order="K")
    for part in range(1, THRESHOLD_MERGE):
        block = slots[part * width : (part + 1) * width]
        np.maximum(merged[: len(block)], block, out=merged[: len(block)])
    return np.moveaxis(merged, 0, axis)


def thresholds(
    upper: np.ndarray, lower: np.ndarray, k: int, gap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """τ (r,) of a strip's r rows from its maxima (upper (r, ·), lower (·, r)): the k-th
    largest group maximum (merged THRESHOLD_MERGE at a time) less `gap` (r,), so at most the
    row's k-th best exact score; and the (r, ·) merged maxima, upper's then lower's."""
    # Merged before the lower part is transposed (by the concatenation): a quarter to move.
    merged = np.concatenate([_merged(upper, 1), _merged(lower, 0).T], axis=1)
    kth = np.partition(merged, merged.shape[1] - k, axis=1)[:, merged.shape[1] - k]
    return (kth - gap).astype(np.float32), merged


def _hit_slots(
    upper: np.ndarray, lower: np.ndarray, merged: np.ndarray, tau: np.ndarray, first: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows ascending, slots) of a strip's groups whose maximum reaches τ: found among the
    merged maxima first (a quarter of the comparisons), then their members checked. first:
    the strip's first slot."""
    rows, hits = np.nonzero(merged >= tau[:, None])
    upper_width = -(-upper.shape[1] // THRESHOLD_MERGE)
    lower_width = -(-lower.shape[0] // THRESHOLD_MERGE)
    up = hits < upper_width
    # The slots merged into each hit, as `_merged` took them; −1 past the last slot.
    parts = np.arange(THRESHOLD_MERGE)
    local = np.where(up, hits, hits - upper_width)[:, None]
    local = local + np.where(up, upper_width, lower_width)[:, None] * parts
    sizes = np.array([lower.shape[0], upper.shape[1]])[up.astype(np.int64)]
    local[local >= sizes[:, None]] = -1
    values = np.empty(local.shape, dtype=np.float32)  # (flat indices: 3× faster; a −1 is
    values[up] = upper.ravel()[rows[up, None] * upper.shape[1] + local[up]]  # dropped below)
    values[~up] = lower.ravel()[local[~up] * lower.shape[1] + rows[~up, None]]
    keep = (local >= 0) & (values >= tau[rows, None])
    pairs, parts_kept = np.nonzero(keep)
    slots = local[pairs, parts_kept] + np.where(up[pairs], first, 0)
    return rows[pairs], slots


def _pack(hit_rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """Entries (hit_rows ascending, values) → (num_rows, widest) int64, each row's values in
    order, padded with −1."""
    counts = np.bincount(hit_rows, minlength=num_rows)
    starts = np.cumsum(counts) - counts
    packed = np.full((num_rows, int(counts.max(initial=0))), -1, dtype=np.int64)
    packed[hit_rows, np.arange(len(hit_rows)) - starts[hit_rows]] = values
    return packed


def candidates(
    hits: tuple[np.ndarray, np.ndarray],
    tau: np.ndarray,
    factors: np.ndarray,
    space: ScoreSpace,
    rows: slice,
) -> np.ndarray:
    """(r, w) int64 columns (−1 padded) with hi ≥ τ of a strip's rows (τ: (r,)): the members
    of the groups whose maximum reaches τ (hits: `_hit_slots`), their hi recomputed from
    `factors`."""
    slots = _pack(*hits, len(tau))
    # A strip's rows share their groups: one table, and a last row of −1 for the padding.
    num_slots = -(-space.num_rows // GROUP)
    table = group_members(np.full(num_slots, rows.start), np.arange(num_slots), space.num_rows)
    table = np.concatenate([table, np.full((1, GROUP), -1)])
    members = table[slots].reshape(len(tau), -1)
    bounds = inner_products_by_index(factors[rows], factors, members)
    if space.scale != 1.0:
        bounds *= np.float32(space.scale)
    if space.metric != "cosine":
        bounds -= space.bias.numpy()[members]  # (a padded −1 stays −inf)
    hit_rows, hit_members = np.nonzero(bounds >= tau[:, None])
    return _pack(hit_rows, members[hit_rows, hit_members], len(tau))


class _MutualDots:
    """Exact products z_i·z_j of the candidates, each pair computed once where it is a candidate
    both ways: a strip keeps its pairs with a later strip's column j for that strip, whose row
    j reuses them. The product is symmetric bit for bit (faiss multiplies and adds in the same
    order either way), and most neighbour pairs are mutual (70% on the benchmark)."""

    def __init__(self, space: ScoreSpace):
        self.z = np.ascontiguousarray(space.z.numpy())
        self.n = space.num_rows
        self.kept: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def dots(self, rows: slice, cols: np.ndarray) -> np.ndarray:
        """(r, w) z_i·z_j of a strip's rows i and their candidate columns (−1: −inf); strips
        must come in order."""
        row_ids = np.arange(rows.start, rows.stop)[:, None]
        keys = row_ids * self.n + cols
        found = np.zeros(cols.shape, dtype=bool)
        kept = self.kept.pop(rows.start, [])
        if kept:
            kept_keys = np.concatenate([part[0] for part in kept])
            order = np.argsort(kept_keys)
            kept_keys, kept_dots = kept_keys[order], np.concatenate([p[1] for p in kept])[order]
            at = np.minimum(np.searchsorted(kept_keys, keys), len(kept_keys) - 1)
            found = (kept_keys[at] == keys) & (cols >= 0)
        out = inner_products_by_index(self.z[rows], self.z, np.where(found, -1, cols))
        if kept:
            out[found] = kept_dots[at[found]]
        later = cols >= rows.stop
        self._keep(np.broadcast_to(row_ids, cols.shape)[later], cols[later], out[later])
        return out

    def drop(self, rows: slice) -> None:
        """Forgets the pairs kept for a strip answered otherwise."""
        self.kept.pop(rows.start, None)

    def _keep(self, rows: np.ndarray, cols: np.ndarray, dots: np.ndarray) -> None:
        """Pairs (row, col) for col's strip, keyed col·n + row."""
        if not len(cols):
            return
        strips = cols // knn_strip_maxima.STRIP_ROWS * knn_strip_maxima.STRIP_ROWS
        order = np.argsort(strips, kind="stable")
        strips, keys, dots = strips[order], (cols * self.n + rows)[order], dots[order]
        starts = np.flatnonzero(np.diff(strips, prepend=-1))
        for start, stop in zip(starts, [*starts[1:], len(strips)], strict=True):
            part = (keys[start:stop], dots[start:stop])
            self.kept.setdefault(int(strips[start]), []).append(part)


def _top_k(cols: np.ndarray, exact: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best exact scores of (r, w) candidates (−1 padded, scored −inf), ties
    by index: a stable sort by score of the columns sorted ascending. (r, k) both, a list
    short of k padded with −1 and −inf (which `knn` answers by brute force)."""
    by_column = np.argsort(np.where(cols < 0, np.iinfo(np.int64).max, cols), axis=1)
    cols = np.take_along_axis(cols, by_column, axis=1)
    exact = np.take_along_axis(exact, by_column, axis=1)
    order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    indices = np.full((len(cols), k), -1, dtype=np.int64)
    scores = np.full((len(cols), k), -np.inf, dtype=np.float32)
    indices[:, : order.shape[1]] = np.take_along_axis(cols, order, axis=1)
    scores[:, : order.shape[1]] = np.take_along_axis(exact, order, axis=1)
    return indices, scores


def _probe_share(
    factors: torch.Tensor, scale: float, bias: np.ndarray | None, gap: np.ndarray, k: int
) -> float:
    """Share of the columns with hi ≥ (k-th largest hi − gap), over PROBE_ROWS rows spread
    evenly: at most the share the search would recompute (its τ, from group maxima, is lower)."""
    n = factors.shape[0]
    rows = np.linspace(0, n - 1, min(n, PROBE_ROWS)).astype(np.int64)
    hi = matmul_nt(factors[rows], scaled(factors, scale))
    if bias is not None:
        hi -= torch.from_numpy(bias)[None, :]
    tau = torch.topk(hi, k, dim=1).values[:, -1] - torch.from_numpy(gap[rows])
    return float((hi >= tau[:, None]).float().mean())


def _answer_strips(
    strips: Iterator[tuple[slice, np.ndarray, np.ndarray]],
    answer: Callable[[slice, np.ndarray, np.ndarray], bool],
    worker: Executor,
) -> int | None:
    """Answers the strips in order, each as a task of `worker` while the next one's maxima are
    computed; answer says whether a strip went over the budget. At most one strip is in flight,
    so the maxima waiting stay bounded and an error surfaces at once. Returns the first row of
    the strips left once most went over the budget (None when all were answered)."""
    over: list[bool] = []
    job: Future[bool] | None = None
    for rows, upper, lower in strips:
        if job is not None:
            over.append(job.result())
        if sum(over) >= LOOSE_STRIPS_TO_STOP and 2 * sum(over) > len(over):
            return rows.start
        job = worker.submit(answer, rows, upper, lower)
        if not OVERLAP:
            over.append(job.result())
            job = None
    if job is not None:
        job.result()
    return None


def symmetric_search(
    space: ScoreSpace, k: int, *, rank: int = PROJECTION_RANK
) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact top-k columns of every row on the CPU: ((n, k) int64 indices, (n, k) float32
    scores), best first, ties by index; None where the search does not pay (too few rows or
    dimensions, most energy outside the projection basis, or non-finite features): use
    another search then."""
    n, dim = space.z.shape
    too_few_rows = n < 4 * knn_strip_maxima.STRIP_ROWS or -(-n // GROUP) < k * THRESHOLD_MERGE
    if dim < 2 * rank or too_few_rows:
        return None
    projections, residual_norms = projection_factors(space, rank)
    residual = residual_norms.numpy()
    # Written so that a NaN (from non-finite features) declines as well.
    if not float((residual**2).mean()) <= MAX_RESIDUAL_SHARE * float(space.sq_norms.mean()):
        return None
    # F = [p, a], padded to a multiple of 8 values a row so that faiss's SIMD products run
    # without a scalar tail; the matrix products read the first rank + 1 in place.
    padded = np.zeros((n, -(-(rank + 1) // 8) * 8), dtype=np.float32)
    padded[:, :rank] = projections.numpy()
    padded[:, rank] = residual
    factors = torch.from_numpy(padded)[:, : rank + 1]
    bias = None if space.metric == "cosine" else space.bias.numpy()
    z_scale = float(space.sq_norms.max()) * space.scale
    tolerance = RELATIVE_TOLERANCE * max(z_scale + float(space.bias.abs().max()), 1e-6)
    gap = 2.0 * space.scale * residual * float(residual.max()) + tolerance
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)

    mutual = _MutualDots(space)
    biases = space.bias.numpy()

    def brute_force(rows: slice) -> None:
        ids = np.arange(rows.start, rows.stop)
        indices[rows], scores[rows], _ = brute_force_search(space, ids, k, farthest=False)

    def answer(rows: slice, upper: np.ndarray, lower: np.ndarray) -> bool:
        tau, merged = thresholds(upper, lower, k, gap[rows])
        hits = _hit_slots(upper, lower, merged, tau, rows.start // GROUP)
        if len(hits[0]) * GROUP > CANDIDATE_BUDGET * n * len(tau):
            mutual.drop(rows)
            brute_force(rows)
            return True
        cols = candidates(hits, tau, padded, space, rows)
        exact = mutual.dots(rows, cols)  # the scores as `pair_scores` computes them
        if space.scale != 1.0:
            exact *= np.float32(space.scale)
        if space.metric != "cosine":
            exact -= biases[cols]  # (a padded −1 stays −inf)
        indices[rows], scores[rows] = _top_k(cols, exact, k)
        return False

    if _probe_share(factors, space.scale, bias, gap, k) > CANDIDATE_BUDGET:
        brute_force(slice(0, n))
        return indices, scores
    with kernel_pool() as pool, ThreadPoolExecutor(max_workers=1) as worker:
        # With a pool its two workers take the chunks and the answers as they come;
        # without, this thread computes the chunks and `worker` answers alongside.
        strips = strip_maxima(factors, space.scale, bias, pool)
        rest = _answer_strips(strips, answer, worker if pool is None else pool)
        strips.close()  # the maxima of strips not reached are never computed
    if rest is not None:
        brute_force(slice(rest, n))
    return indices, scores
