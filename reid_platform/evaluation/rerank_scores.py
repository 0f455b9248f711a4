"""Score space, stable top-k and brute-force search shared by the neighbour searches.

A *score* ranks row i's neighbours (larger = nearer) and is one matrix product away:
`scale · z_i·z_j − bias_j`, with z the L2-normalised features for cosine (scale 1, bias 0) and
the mean-centred features for the euclidean metrics (scale 2, bias ‖z_j‖², so that
‖z_i − z_j‖² = ‖z_i‖² − score_ij).
"""

import numpy as np
import torch
from torch import Tensor

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import DISTANCE_METRICS, DistanceMetric, l2_normalize

BRUTE_FORCE_BLOCK_ROWS = 512
"""Rows per brute-force product: 512 × a 100k-row matrix is 200 MB of float32 scores."""


def _coarse_mean(features: Tensor) -> Tensor:
    """Column means rounded to a grid 2⁻⁸ of the largest magnitude: as good a centre, and
    subtracting it is exact for features on a coarser grid, so tied distances stay tied."""
    mean = features.double().mean(0)
    largest = float(features.abs().max()) if features.numel() else 0.0
    if largest == 0.0:
        return mean.float()
    step = 2.0 ** (np.floor(np.log2(largest)) - 8)
    return (torch.round(mean / step) * step).float()


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

    def __init__(self, features: np.ndarray, metric: DistanceMetric, device: str = "cpu"):
        if metric not in DISTANCE_METRICS:
            raise EvaluationError(f"unknown distance {metric!r}; choose one of {DISTANCE_METRICS}")
        if features.ndim != 2:
            raise EvaluationError(f"features must be a 2-d (n, d) array, got {features.shape}")
        self.metric = metric
        self.device = resolve_device(device)
        if metric == "cosine":
            z = torch.from_numpy(l2_normalize(features)).to(self.device)
            self.scale = 1.0
            self.bias = torch.zeros(z.shape[0], dtype=torch.float32, device=self.device)
        else:
            # Centring changes no distance but makes ‖z‖² small, so the products lose less
            # precision to cancellation than ‖x‖² + ‖y‖² − 2x·y on raw features.
            raw = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            z = (raw - _coarse_mean(raw)).to(self.device)
            self.scale = 2.0
            self.bias = z.square().sum(1)
        self.z = z
        self.sq_norms = self.bias if metric != "cosine" else z.square().sum(1)
        """(n,) float32 squared norms of the rows of z."""

    @property
    def num_rows(self) -> int:
        return int(self.z.shape[0])

    def scores(self, rows: Tensor, cols: Tensor | None = None) -> Tensor:
        """(r, c) scores of rows `rows` (indices) against `cols` (indices; all rows when None)."""
        z_cols = self.z if cols is None else self.z[cols]
        bias = self.bias if cols is None else self.bias[cols]
        out = self.z[rows] @ z_cols.T
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


def top_k_stable(values: Tensor, k: int, *, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """(r, n) values → the k best per row as ((r, k) int64 indices, (r, k) values), best first.

    Equal values are ordered by index (like a stable argsort); a row whose k-th value equals its
    (k + 1)-th (a tie across the boundary of the top k) is redone with a stable argsort, so the
    choice is exact. Asking torch for k + 1 values is far cheaper than counting ties over the row.
    """
    n = values.shape[1]
    top, idx = values.topk(min(k + 1, n), dim=1, largest=largest, sorted=True)
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
