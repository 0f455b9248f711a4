"""Score space, stable top-k and brute-force search shared by the neighbour searches.

A *score* ranks row i's neighbours (larger = nearer) and is one matrix product away:
`scale · z_i·z_j − bias_j`, with z the L2-normalised features for cosine (scale 1, bias 0) and
the mean-centred features for the euclidean metrics (scale 2, bias ‖z_j‖², so that
‖z_i − z_j‖² = ‖z_i‖² − score_ij).
"""

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import DISTANCE_METRICS, DistanceMetric

BRUTE_FORCE_BLOCK_ROWS = 512
"""Rows per brute-force product: 512 × a 100k-row matrix is 200 MB of float32 scores."""
GROUP_COLUMNS = 32
"""Columns per group in the two-stage top-w selection (see `grouped_top`)."""


def _coarse_mean(parts: Sequence[Tensor]) -> Tensor:
    """(d,) column means of the stacked row blocks (n_i, d), rounded to a grid 2⁻⁸ of the
    largest magnitude: as good a centre, and subtracting it is exact for features on a coarser
    grid, so tied distances stay tied."""
    total = torch.stack([part.sum(0, dtype=torch.float64) for part in parts]).sum(0)
    mean = total / max(sum(len(part) for part in parts), 1)
    largest = max((float(part.abs().max()) for part in parts if part.numel()), default=0.0)
    if largest == 0.0:
        return mean.float()
    step = 2.0 ** (np.floor(np.log2(largest)) - 8)
    return (torch.round(mean / step) * step).float()


def _unit_rows_into(part: Tensor, out: Tensor) -> None:
    """out (n, d) ← the rows of `part` (n, d) scaled to unit length, zero rows staying zero
    (divided by the smallest normal float); torch's norm is threaded and needs no (n, d)
    temporary (numpy's took 0.5 s at Market scale). `out` may be `part` itself."""
    norms = torch.linalg.vector_norm(part, dim=1, keepdim=True)
    torch.div(part, norms.clamp_(min=float(np.finfo(np.float32).tiny)), out=out)


def _float_parts(features: np.ndarray | Sequence[np.ndarray]) -> tuple[list[Tensor], bool]:
    """(n, d) features, or row blocks of them → float32 (n_i, d) tensors, and whether the only
    one is a fresh copy (which may then be changed in place) rather than a view of the input."""
    arrays = [features] if isinstance(features, np.ndarray) else list(features)
    shapes = [part.shape for part in arrays]
    if not arrays or any(len(shape) != 2 for shape in shapes):
        raise EvaluationError(f"features must be 2-d (n, d) arrays, got {shapes}")
    if len({shape[1] for shape in shapes}) > 1:
        raise EvaluationError(f"feature blocks must share one dimension d, got {shapes}")
    parts = [torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32)) for p in arrays]
    owned = len(parts) == 1 and parts[0].data_ptr() != arrays[0].__array_interface__["data"][0]
    return parts, owned


def _stack_into(parts: Sequence[Tensor], owned: bool) -> tuple[Tensor, list[Tensor]]:
    """A (n, d) float32 tensor for the stacked rows, and its row blocks matching `parts`: the
    only part itself where it is `owned`, else a fresh torch allocation. (Not numpy's: numpy
    asks for huge pages above 4 MB, and on the project's VM host a fresh huge page often costs
    a fault-in by the host: the Market-scale space (158 MB) took 0.25-0.33 s in four of five
    fresh processes that way, 0.06-0.08 s in 4 KB pages, which the writing threads fault.)"""
    if owned:
        return parts[0], [parts[0]]
    out = torch.empty((sum(len(p) for p in parts), parts[0].shape[1]), dtype=torch.float32)
    return out, list(out.split([len(p) for p in parts]))


def matmul_nt(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """a (m, d) @ b (n, d)ᵀ → (m, n) float32, written into `out` (any row stride) when given.

    On the CPU numpy's OpenBLAS does the product: on the project's 2-core AMD EPYC host it is
    35-40% faster than torch's MKL for the shapes here (measured, same run: 1,024 × 2,048 ×
    15,913 in 0.43 s vs 0.65 s; 2,108 × 258 × 15,913 in 0.11 s vs 0.18 s).
    """
    if a.device.type != "cpu":
        return torch.matmul(a, b.T, out=out)
    if out is None:
        return torch.from_numpy(np.matmul(a.numpy(), b.numpy().T))
    np.matmul(a.numpy(), b.numpy().T, out=out.numpy())
    return out


def resolve_device(device: str) -> torch.device:
    """The torch device for `device`; a CUDA request without a usable GPU is a user error."""
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationError(f"device {device!r} was requested but no CUDA GPU is available")
    return resolved


class ScoreSpace:
    """Features arranged so that `scale · z_i·z_j − bias_j` ranks row i's neighbours.

    z: (n, d) float32 on `device`; bias: (n,) float32; `distances` turns scores back into
    distances of the metric.
    """

    def __init__(
        self,
        features: np.ndarray | Sequence[np.ndarray],
        metric: DistanceMetric,
        device: str = "cpu",
    ):
        """features: (n, d), or a sequence of (n_i, d) row blocks taken as one stack (stacked
        with the only copy the space makes anyway)."""
        if metric not in DISTANCE_METRICS:
            raise EvaluationError(f"unknown distance {metric!r}; choose one of {DISTANCE_METRICS}")
        parts, owned = _float_parts(features)
        self.metric = metric
        self.device = resolve_device(device)
        # One pass writes the stacked copy, already normalised or centred, from the parts.
        stacked, blocks = _stack_into(parts, owned)
        if metric == "cosine":
            for part, block in zip(parts, blocks, strict=True):
                _unit_rows_into(part, block)
            z = stacked.to(self.device)
            self.scale = 1.0
            self.bias = torch.zeros(z.shape[0], dtype=torch.float32, device=self.device)
        else:
            # Centring changes no distance but makes ‖z‖² small, so the products lose less
            # precision to cancellation than ‖x‖² + ‖y‖² − 2x·y on raw features.
            mean = _coarse_mean(parts)
            for part, block in zip(parts, blocks, strict=True):
                torch.sub(part, mean, out=block)
            z = stacked.to(self.device)
            self.scale = 2.0
            self.bias = z.square().sum(1)
        self.z = z
        self.all_z = z
        """z of all rows, also in a `part`: the rows projection bases are computed from."""
        self.bases: dict[int, Tensor] = {}
        """Projection bases by rank, computed once from `all_z` and shared by `part`s."""
        # (Unit rows up to rounding; no (n, d) temporary for the cosine norms.)
        self.sq_norms = self.bias if metric != "cosine" else torch.linalg.vector_norm(z, dim=1) ** 2
        """(n,) float32 squared norms of the rows of z."""

    def part(self, rows: slice) -> "ScoreSpace":
        """The same space restricted to a range of rows (views of its tensors, no copy)."""
        part = copy.copy(self)
        part.z, part.bias, part.sq_norms = self.z[rows], self.bias[rows], self.sq_norms[rows]
        return part

    @property
    def num_rows(self) -> int:
        return int(self.z.shape[0])

    def scores(self, rows: Tensor, cols: Tensor | None = None) -> Tensor:
        """(r, c) scores of rows `rows` (indices) against `cols` (indices; all rows when None)."""
        z_cols = self.z if cols is None else self.z[cols]
        bias = self.bias if cols is None else self.bias[cols]
        out = matmul_nt(self.z[rows], z_cols)
        return out.mul_(self.scale).sub_(bias)

    def distances(self, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores (r, ...) of rows `rows` (r,) → float32 distances of the metric, same shape."""
        scores = np.asarray(scores, dtype=np.float32)
        if self.metric == "cosine":
            return (1.0 - scores).astype(np.float32)
        own = self.bias[torch.from_numpy(rows).to(self.device)].cpu().numpy()
        own = own.reshape(own.shape + (1,) * (scores.ndim - 1))
        squared = np.maximum(own - scores, 0.0).astype(np.float32)
        return np.sqrt(squared) if self.metric == "euclidean" else squared


def grouped_top(values: Tensor, width: int, *, largest: bool) -> tuple[Tensor, Tensor]:
    """(r, n) values → the `width` largest (or smallest) per row: ((r, width) values, best
    first, (r, width) int64 column indices); width ≤ n.

    Two stages, far cheaper than a top-k over whole rows: the best value of each group of
    GROUP_COLUMNS columns (a fast vectorised reduction), then a top-k over the members of the
    `width` best groups (and the few columns after the last whole group) only. Exact in the
    values: a column outside those groups is no better than the width-th best group's best
    value, and the chosen groups hold `width` values at least that good. (Equal values may
    come back in any index order, as with `topk`.)
    """
    rows, n = values.shape
    if n < 4 * GROUP_COLUMNS * width:  # too few groups for the first stage to pay
        return values.topk(width, dim=1, largest=largest)
    full = n // GROUP_COLUMNS * GROUP_COLUMNS
    grouped = values[:, :full].view(rows, -1, GROUP_COLUMNS)
    best = grouped.amax(-1) if largest else grouped.amin(-1)
    # The order of the chosen groups does not matter: the second stage sorts.
    groups = best.topk(width, dim=1, largest=largest, sorted=False).indices
    members = grouped.gather(1, groups[:, :, None].expand(-1, -1, GROUP_COLUMNS)).flatten(1)
    # The (< GROUP_COLUMNS) columns past the last whole group are always candidates.
    members = torch.cat([members, values[:, full:]], dim=1) if full < n else members
    top, positions = members.topk(width, dim=1, largest=largest)
    in_groups = width * GROUP_COLUMNS
    group = groups.gather(1, (positions // GROUP_COLUMNS).clamp_(max=width - 1))
    cols = torch.where(
        positions < in_groups,
        group * GROUP_COLUMNS + positions % GROUP_COLUMNS,
        positions - in_groups + full,
    )
    return top, cols


def top_k_stable(values: Tensor, k: int, *, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """(r, n) values → the k best per row as ((r, k) int64 indices, (r, k) values), best first.

    Equal values are ordered by index (like a stable argsort); a row whose k-th value equals its
    (k + 1)-th (a tie across the boundary of the top k) is redone with a stable argsort, so the
    choice is exact. Asking torch for k + 1 values is far cheaper than counting ties over the row.
    """
    n = values.shape[1]
    top, idx = grouped_top(values, min(k + 1, n), largest=largest)
    tied_rows = np.empty(0, dtype=np.int64)
    if k < n:
        tied_rows = torch.nonzero(top[:, k] == top[:, k - 1]).flatten().cpu().numpy()
        top, idx = top[:, :k], idx[:, :k]
    top_np, idx_np = top.cpu().numpy(), idx.cpu().numpy().astype(np.int64)
    key = -top_np if largest else top_np
    order = np.lexsort((idx_np, key), axis=-1)
    idx_np = np.take_along_axis(idx_np, order, axis=1)
    top_np = np.take_along_axis(top_np, order, axis=1)
    for row in tied_rows:
        full = values[row].cpu().numpy()
        best = np.argsort(-full if largest else full, kind="stable")[:k]
        idx_np[row], top_np[row] = best, full[best]
    return idx_np, top_np


def brute_force_search(
    space: ScoreSpace, rows: np.ndarray, k: int, *, farthest: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Exact search for `rows` (r,) against every row: ((r, k) indices, (r, k) scores, (r,) min).

    The last item is each row's smallest score (its farthest neighbour), None unless `farthest`.
    """
    indices = np.empty((len(rows), k), dtype=np.int64)
    scores = np.empty((len(rows), k), dtype=np.float32)
    lowest = np.empty(len(rows), dtype=np.float32) if farthest else None
    with torch.no_grad():
        for start in range(0, len(rows), BRUTE_FORCE_BLOCK_ROWS):
            block = slice(start, start + BRUTE_FORCE_BLOCK_ROWS)
            row_ids = torch.from_numpy(rows[block]).to(space.device)
            block_scores = space.scores(row_ids)
            indices[block], scores[block] = top_k_stable(block_scores, k, largest=True)
            if lowest is not None:
                lowest[block] = block_scores.amin(1).cpu().numpy()
    return indices, scores, lowest
