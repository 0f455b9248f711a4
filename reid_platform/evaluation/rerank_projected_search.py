"""Certified low-rank neighbour search: the exact answer for most rows at a fraction of the cost.

With an orthonormal basis P (rank × d) of the main principal directions, every feature splits
into a projection p_i = P z_i and a residual r_i ⟂ P, so z_i·z_j = p_i·p_j + r_i·r_j and, by
Cauchy–Schwarz, |r_i·r_j| ≤ a_i a_j with a_i = ‖r_i‖. One product in rank + 2 dimensions thus
bounds every score: hi_ij = scale(p_i·p_j + a_i a_j) − bias_j ≥ score_ij ≥ hi_ij − 2·scale·a_i a_j.

The bound matrix is symmetric up to the bias: rows of the first part keep their bounds on the
second part, which the second part's rows then read back transposed instead of recomputing.
Per row, the columns with the largest upper bounds (and, for the farthest neighbour, the
smallest) are rescored exactly, a few first and the rest only where needed. A row is
*certified* when its exact k-th best score beats the bound of every column not rescored, and its
smallest exact score is below the lower bound of every column not rescored; only uncertified
rows need the full brute-force product. Real embeddings (and the benchmark's) concentrate in
a few hundred directions, so residuals are small and nearly all rows certify. When most energy
lies outside the basis (full-rank isotropic data) the search goes straight to brute force.
"""

import numpy as np
import torch
from torch import Tensor

from reid_platform.evaluation.kernel_pool import POOL_WORKERS, TaskBuffers, kernel_pool
from reid_platform.evaluation.rerank_pairs import pair_scores
from reid_platform.evaluation.rerank_scores import ScoreSpace, grouped_top, matmul_nt

PROJECTION_RANK = 256
BASIS_SAMPLE_ROWS = 2048
POWER_ITERATIONS = 2
BLOCK_ENTRIES = 1 << 25
"""Bound matrix entries per block (128 MB of float32)."""
STORED_BOUND_ENTRIES = 96 << 20
"""Bounds kept for reuse by symmetry (384 MiB of float32 at most): a quarter of the bound
product saved up to about 20,000 rows (Market's 19,281 for query expansion), less beyond (see
`_split_row`)."""
TRANSPOSE_STRIP = 128
"""Rows per strip when reading the stored bounds back transposed."""
RELATIVE_TOLERANCE = 1e-5
"""Certification margin, relative to the score scale: far above float32 rounding of a product,
so a certified row is exact to the precision the scores themselves have."""
MAX_RESIDUAL_SHARE = 0.2
"""Above this share of the energy outside the basis, almost no row certifies (isotropic data:
87% at 2,048-d; the benchmark's features: 0.7%), so the search goes straight to brute force."""
FIRST_ROUND_EXTRA = 8
"""Near candidates rescored in the first round beyond k (most rows certify with these)."""
FAR_CANDIDATES = (2, 16)
"""Far candidates rescored in the first round and in all."""


def _basis(z: Tensor, rank: int) -> Tensor:
    """(rank, d) orthonormal rows spanning the main directions of a sample S of the rows of z.

    A randomised range finder with power iterations (span of (SᵀS)^q Ω): any orthonormal
    basis of a good subspace will do, so no singular value decomposition is needed.
    """
    generator = np.random.default_rng(0)
    sample_rows = generator.choice(z.shape[0], min(z.shape[0], BASIS_SAMPLE_ROWS), replace=False)
    sample = z[torch.from_numpy(np.sort(sample_rows)).to(z.device)]
    sketch = torch.from_numpy(generator.standard_normal((z.shape[1], rank), dtype=np.float32))
    directions = sketch.to(z.device)
    for _ in range(POWER_ITERATIONS):
        directions, _ = torch.linalg.qr(sample.T @ (sample @ directions))
    return directions.T.contiguous()


def projection_factors(space: ScoreSpace, rank: int) -> tuple[Tensor, Tensor]:
    """(n, rank) projections p of z onto the space's basis of `rank` directions and (n,)
    residual norms a, inflated slightly so rounding never makes them too small."""
    z = space.z
    if rank not in space.bases:  # one basis serves every part of a space
        space.bases[rank] = _basis(space.all_z, rank)
    projections = matmul_nt(z, space.bases[rank])
    # The slack (far above float32 rounding of these sums) keeps a an upper bound on ‖r‖.
    norms = space.sq_norms
    squared = norms - projections.square().sum(1)
    return projections, (squared.clamp(min=0.0) + 1e-4 * norms + 1e-12).sqrt()


def _bound_factors(space: ScoreSpace, rank: int) -> tuple[Tensor, Tensor, np.ndarray]:
    """Left (n, rank+2) and right (n, rank+2) factors whose product is the upper bound hi,
    and the residual norms a (n,) of `projection_factors`."""
    projections, residual = projection_factors(space, rank)
    ones = torch.ones_like(residual)
    left = torch.cat([projections, residual[:, None], ones[:, None]], dim=1)
    right = torch.cat(
        [projections * space.scale, (residual * space.scale)[:, None], -space.bias[:, None]], dim=1
    )
    return left, right, residual.numpy()


def _split_row(n: int) -> int:
    """Rows [0, s) are bounded against every column, rows [s, n) against [s, n) only: their
    bounds on [0, s) are the stored (s, n − s) block transposed. s ≤ n/2 with the stored block
    within STORED_BOUND_ENTRIES; it saves s(n − s)/n² of the product (a quarter at best)."""
    if n * n <= 4 * STORED_BOUND_ENTRIES:
        return n // 2
    return int((n - np.sqrt(float(n) * n - 4.0 * STORED_BOUND_ENTRIES)) / 2)


def _row_blocks(n: int, split: int, block_rows: int) -> list[slice]:
    """Consecutive row slices of at most `block_rows`, none straddling `split`."""
    starts = [*range(0, split, block_rows), *range(split, n, block_rows)]
    ends = [*starts[1:], n]
    return [slice(a, min(b, split) if a < split else b) for a, b in zip(starts, ends, strict=True)]


def _copy_transposed(source: Tensor, target: Tensor) -> None:
    """target (m, s) ← source (s, m)ᵀ, in strips of rows of `source`: a whole-matrix
    transposed copy misses the cache on every element, strips stay in it (5× faster)."""
    for start in range(0, source.shape[0], TRANSPOSE_STRIP):
        strip = slice(start, start + TRANSPOSE_STRIP)
        target[:, strip].copy_(source[strip].T)


def _candidates(
    left: Tensor, right: Tensor, bias: Tensor | None, near: int, far: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the `near` columns with the largest upper bound (largest first) and the `far`
    with the smallest (smallest first): ((n, near) indices, bounds, (n, far) indices, bounds).

    bias: the (n,) biases inside `right`'s last column, None when they are all zero (cosine).
    Row blocks are tasks of a `kernel_pool` where the host has one (the bounds of rows past
    the split read the stored block, so they wait for the rows before it).
    """
    n = left.shape[0]
    split = _split_row(n)
    near_idx = np.empty((n, near), dtype=np.int64)
    near_hi = np.empty((n, near), dtype=np.float32)
    far_idx = np.empty((n, far), dtype=np.int64)
    far_hi = np.empty((n, far), dtype=np.float32)
    stored = torch.empty((split, n - split), dtype=left.dtype, device=left.device)
    with kernel_pool() as pool:
        workers = 1 if pool is None else POOL_WORKERS
        block_rows = max(16, BLOCK_ENTRIES // (workers * n))  # the same memory in all
        shape = (min(block_rows, n), n)
        buffers = TaskBuffers(
            pool, lambda: torch.empty(shape, dtype=left.dtype, device=left.device)
        )

        @torch.no_grad()  # (grad mode is per thread: the workers' too)
        def bound_block(rows: slice) -> None:
            with buffers.borrowed() as buffer:
                bounds = buffer[: rows.stop - rows.start]
                _block_bounds(left, right, bias, rows, split, stored, bounds)
                values, idx = grouped_top(bounds, near, largest=True)
                near_idx[rows], near_hi[rows] = idx.numpy(), values.numpy()
                if far:
                    values, idx = grouped_top(bounds, far, largest=False)
                    far_idx[rows], far_hi[rows] = idx.numpy(), values.numpy()

        blocks = _row_blocks(n, split, block_rows)
        if pool is None:
            for rows in blocks:
                bound_block(rows)
        else:
            before = [rows for rows in blocks if rows.start < split]
            for part in (before, blocks[len(before) :]):
                for job in [pool.submit(bound_block, rows) for rows in part]:
                    job.result()
    return near_idx, near_hi, far_idx, far_hi


def _block_bounds(
    left: Tensor,
    right: Tensor,
    bias: Tensor | None,
    rows: slice,
    split: int,
    stored: Tensor,
    bounds: Tensor,
) -> None:
    """The bounds of `rows` against all columns into `bounds` (r, n): rows before `split` from
    the product (keeping their columns from `split` on in `stored`), later rows from the
    product with columns from `split` on and the stored block read back transposed."""
    if rows.start < split:
        matmul_nt(left[rows], right, out=bounds)
        stored[rows] = bounds[:, split:]
        return
    matmul_nt(left[rows], right[split:], out=bounds[:, split:])
    lower = bounds[:, :split]
    _copy_transposed(stored[:, rows.start - split : rows.stop - split], lower)
    if bias is not None:
        lower += bias[rows, None]
        lower -= bias[None, :split]


class _Rescorer:
    """Exact top-k and smallest score of rows from a growing number of rescored candidates."""

    def __init__(self, space: ScoreSpace, k: int, near: tuple[np.ndarray, np.ndarray]):
        self.space, self.k = space, k
        self.near_idx, self.near_hi = near
        z_scale = float(space.sq_norms.max()) * space.scale
        self.tolerance = RELATIVE_TOLERANCE * max(z_scale + float(space.bias.abs().max()), 1e-6)

    def top_k(self, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rescore the first `width` near candidates of `rows` → top-k indices, scores, and
        whether each row is certified (its k-th score beats every bound not rescored)."""
        cols = self.near_idx[rows, :width]
        exact = pair_scores(self.space, rows, cols)
        order = np.lexsort((cols, -exact), axis=-1)[:, : self.k]
        scores = np.take_along_axis(exact, order, axis=1)
        # Columns not rescored have hi ≤ the next candidate's (or the last candidate's) bound.
        next_hi = self.near_hi[rows, min(width, self.near_hi.shape[1] - 1)]
        return (
            np.take_along_axis(cols, order, axis=1),
            scores,
            scores[:, -1] > next_hi + self.tolerance,
        )

    def lowest(
        self, rows: np.ndarray, far: tuple[np.ndarray, np.ndarray], width: int, gap: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Smallest exact score over the first `width` far candidates, and whether it is below
        the lower bound hi − gap of every far column not rescored."""
        far_idx, far_hi = far
        low = pair_scores(self.space, rows, far_idx[rows, :width]).min(1)
        next_hi = far_hi[rows, min(width, far_hi.shape[1] - 1)]
        return low, low <= next_hi - gap[rows] - self.tolerance


def projected_search(
    space: ScoreSpace, k: int, *, farthest: bool, rank: int = PROJECTION_RANK
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Top-k columns of every row by exact score, where certified.

    Returns (n, k) int64 indices and (n, k) float32 scores (best first, ties by index), the
    (n,) smallest score (None unless `farthest`) and the int64 rows that failed certification,
    whose entries are to be recomputed by brute force. When the features have too few
    dimensions or rows for the projection to pay, every row is returned as failed.
    """
    n, dim = space.z.shape
    indices = np.zeros((n, k), dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float32)
    lowest = np.zeros(n, dtype=np.float32) if farthest else None
    near = max(3 * k, k + 40)
    far = FAR_CANDIDATES[1] if farthest else 0
    if dim < 2 * rank or n < 4 * (near + far):
        return indices, scores, lowest, np.arange(n, dtype=np.int64)
    left, right, residual = _bound_factors(space, rank)
    if float((residual**2).mean()) > MAX_RESIDUAL_SHARE * float(space.sq_norms.mean()):
        return indices, scores, lowest, np.arange(n, dtype=np.int64)  # bounds would be too loose
    bias = None if space.metric == "cosine" else space.bias
    near_idx, near_hi, far_idx, far_hi = _candidates(left, right, bias, near, far)
    rescorer = _Rescorer(space, k, (near_idx, near_hi))
    certified = np.zeros(n, dtype=bool)
    pending = np.arange(n, dtype=np.int64)
    for width in (k + FIRST_ROUND_EXTRA, near):
        indices[pending], scores[pending], ok = rescorer.top_k(pending, width)
        certified[pending] = ok
        pending = pending[~ok]
    if lowest is not None:
        # A far column not rescored has score ≥ hi − 2·scale·a_i·a_j ≥ hi − 2·scale·a_i·max(a).
        gap = 2.0 * space.scale * residual * float(residual.max())
        pending = np.flatnonzero(certified)
        for width in FAR_CANDIDATES:
            lowest[pending], ok = rescorer.lowest(pending, (far_idx, far_hi), width, gap)
            pending = pending[~ok]
        certified[pending] = False
    return indices, scores, lowest, np.flatnonzero(~certified).astype(np.int64)
