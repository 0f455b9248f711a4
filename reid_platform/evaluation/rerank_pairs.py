"""Exact scores of a few chosen columns per row (candidate rescoring, re-ranking weights).

Each pair needs a full feature vector (8 KB at 2,048-d), so this is memory-bound. On the CPU,
faiss's `fvec_inner_products_by_idx` reads each column vector in place (no gathered copy) and
runs its SIMD dot products over OpenMP threads: 2.7× faster than numpy's gather plus batched
dot at Market scale (measured). On a GPU torch does both.
"""

import faiss
import numpy as np
import torch

from reid_platform.evaluation.rerank_scores import ScoreSpace

GATHER_ENTRIES = 1 << 22
"""Feature values gathered at once (16 MB of float32): stays in cache, bounds memory."""


def inner_products_by_index(
    x: np.ndarray, y: np.ndarray, ids: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """(r, m) float32 x[i]·y[ids[i, j]] on the CPU (into `out`, C-contiguous, when given); an
    index −1 (padding) gives −inf.

    x: (r, d) and y: (n, d) float32; ids: (r, m) int64. The y vectors are read in place.
    """
    x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)
    ids = np.ascontiguousarray(ids, np.int64)
    out = np.empty(ids.shape, dtype=np.float32) if out is None else out
    if ids.size:
        faiss.fvec_inner_products_by_idx(  # type: ignore[attr-defined]  # SWIG, not in stubs
            faiss.swig_ptr(out),
            faiss.swig_ptr(x),
            faiss.swig_ptr(y),
            faiss.swig_ptr(ids),
            int(x.shape[1]),
            int(ids.shape[0]),
            int(ids.shape[1]),
        )
    return out


def _cpu_pair_scores(
    space: ScoreSpace, rows: np.ndarray, cols: np.ndarray, out: np.ndarray
) -> None:
    """CPU path of `pair_scores`: only the (few) row vectors are gathered, in blocks."""
    z = np.ascontiguousarray(space.z.numpy())
    bias = space.bias.numpy()
    step = max(1, GATHER_ENTRIES // int(z.shape[1]))
    for start in range(0, len(rows), step):
        block = slice(start, start + step)
        dots = inner_products_by_index(z[rows[block]], z, cols[block], out=out[block])
        if space.scale != 1.0:
            dots *= np.float32(space.scale)
        if space.metric != "cosine":
            dots -= bias[cols[block]]  # a padded −1 stays −inf


def pair_scores(space: ScoreSpace, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Scores of row `rows[i]` (r,) against each column `cols[i, :]` (r, m) → (r, m) float32.

    On the CPU a column index −1 (padding of ragged lists) scores −inf.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    out = np.empty(cols.shape, dtype=np.float32)
    if cols.size == 0:
        return out
    if space.device.type == "cpu":
        _cpu_pair_scores(space, rows, cols, out)
        return out
    dim = int(space.z.shape[1])
    step = max(1, GATHER_ENTRIES // (dim * cols.shape[1]))
    with torch.no_grad():
        for start in range(0, len(rows), step):
            block = slice(start, start + step)
            col_ids = torch.from_numpy(cols[block]).to(space.device)
            row_ids = torch.from_numpy(rows[block]).to(space.device)
            dots = (space.z[col_ids] * space.z[row_ids][:, None, :]).sum(-1)
            out[block] = (dots * space.scale - space.bias[col_ids]).cpu().numpy()
    return out
