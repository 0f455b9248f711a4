"""Exact scores of a few chosen columns per row (candidate rescoring, re-ranking weights).

Each pair needs a full feature vector (8 KB at 2,048-d), so this is memory-bound; on the CPU
numpy's row gather plus a batched dot is several times faster than torch's indexing here
(measured), on a GPU torch does both.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from reid_platform.evaluation.rerank_scores import ScoreSpace

GATHER_ENTRIES = 1 << 22
"""Feature values gathered at once (16 MB of float32): stays in cache, bounds memory."""


def pair_scores(space: ScoreSpace, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Scores of row `rows[i]` (r,) against each column `cols[i, :]` (r, m) → (r, m) float32."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    out = np.empty(cols.shape, dtype=np.float32)
    if cols.size == 0:
        return out
    dim = int(space.z.shape[1])
    step = max(1, GATHER_ENTRIES // (dim * cols.shape[1]))
    bias = space.bias.cpu().numpy()
    if space.device.type == "cpu":
        z = space.z.numpy()

        def fill(start: int) -> None:
            block = slice(start, start + step)
            dots = np.einsum("rmd,rd->rm", z[cols[block]], z[rows[block]])
            out[block] = dots * space.scale - bias[cols[block]]

        # numpy releases the GIL in the gather and the dot: threads use every core.
        with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
            list(pool.map(fill, range(0, len(rows), step)))
        return out
    with torch.no_grad():
        for start in range(0, len(rows), step):
            block = slice(start, start + step)
            col_ids = torch.from_numpy(cols[block]).to(space.device)
            row_ids = torch.from_numpy(rows[block]).to(space.device)
            dots = (space.z[col_ids] * space.z[row_ids][:, None, :]).sum(-1)
            out[block] = (dots * space.scale - space.bias[col_ids]).cpu().numpy()
    return out
