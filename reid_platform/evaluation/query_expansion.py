"""Average query expansion (AQE, notes §3.5) over queries and gallery, without N × N memory.

Per round: each of the N = q + g features is replaced by the mean, over its k nearest features
by cosine similarity (itself included), of the feature times similarity^α; the next round ranks
by the new features (normalised). The reference computes the full N × N similarity matrix; here
the neighbours come from `neighbours_in_space` and each mean gathers only its k rows.
"""

from collections.abc import Sequence

import numpy as np
import torch

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.knn import neighbours_in_space
from reid_platform.evaluation.rerank_scores import ScoreSpace, resolve_device

MEANS_BLOCK_ROWS = 1024
"""Rows of means gathered at a time (their per-block sums stay in cache until written)."""


def _weighted_sums(
    parts: Sequence[torch.Tensor], indices: torch.Tensor, weights: torch.Tensor, out: torch.Tensor
) -> None:
    """out (n, d) ← Σ_j weights[i, j] · x[indices[i, j]] of the rows x stacked from `parts`
    (n_p, d) float32 on the CPU; indices and weights (n, k) index that stack; out must not
    overlap the parts."""
    starts = np.cumsum([0, *(len(part) for part in parts)])
    for first in range(0, len(indices), MEANS_BLOCK_ROWS):
        block = slice(first, first + MEANS_BLOCK_ROWS)
        rows, row_weights = indices[block], weights[block]
        total: torch.Tensor | None = None
        for part, start, stop in zip(parts, starts[:-1], starts[1:], strict=True):
            inside = (rows >= int(start)) & (rows < int(stop))
            counts = inside.sum(1)
            # A weighted sum of a row's gathered rows of this part (an empty bag sums to
            # zero): torch's embedding bag does it threaded and vectorised, 3-5x faster than
            # scipy's single-threaded sparse product (measured).
            sums = torch.nn.functional.embedding_bag(
                rows[inside] - int(start),
                part,
                counts.cumsum(0) - counts,
                per_sample_weights=row_weights[inside],
                mode="sum",
            )
            total = sums if total is None else total.add_(sums)
        assert total is not None  # a space has a part at least
        out[block] = total


def _expand_once(parts: Sequence[np.ndarray], k: int, alpha: float, device: str) -> np.ndarray:
    """Row blocks (n_i, d) of float32 features, taken as one (n, d) stack → (n, d) float32
    similarity-weighted means over each row's k nearest rows.

    The means are gathered from the blocks themselves and, on the CPU, written over the score
    space's stacked copy, which the search no longer needs: one fresh (n, d) buffer a round,
    not two (at Market scale 158 MB, whose first touch cost 0.04-0.08 s, at times 0.3 s).
    """
    space = ScoreSpace(parts, "cosine", device)
    neighbours = neighbours_in_space(space, k)
    indices = torch.from_numpy(neighbours.indices)
    weights = torch.from_numpy(1.0 - neighbours.distances.astype(np.float32))
    weights.pow_(alpha).div_(indices.shape[1])
    out = space.z if space.z.device.type == "cpu" else torch.empty(space.z.shape)
    del space  # (its stacked copy lives on as `out` on the CPU)
    _weighted_sums([torch.from_numpy(part) for part in parts], indices, weights, out)
    return out.numpy()


def average_query_expansion(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    *,
    times: int = 1,
    k: int = 10,
    alpha: float = 3.0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Expanded query (q, d) and gallery (g, d) float32 features after `times` AQE rounds.

    k (capped at q + g) counts the feature itself; the outputs are not normalised (as in the
    reference), distances of either metric are then computed from them as usual.
    """
    if times < 0 or k < 1:
        raise EvaluationError(f"query expansion needs times >= 0 and k >= 1, got {times}, {k}")
    if q_feats.ndim != 2 or g_feats.ndim != 2 or q_feats.shape[1] != g_feats.shape[1]:
        raise EvaluationError(
            f"query and gallery features must be (n, d) with one d; got {q_feats.shape}, "
            f"{g_feats.shape}"
        )
    resolve_device(device)
    if times == 0:  # fresh arrays, as every other round count gives
        return q_feats.astype(np.float32), g_feats.astype(np.float32)
    k = min(k, len(q_feats) + len(g_feats))
    # float32 blocks the space views (its stack is then a copy, never one of these).
    parts = [np.ascontiguousarray(part, dtype=np.float32) for part in (q_feats, g_feats)]
    expanded = _expand_once(parts, k, alpha, device)
    for _ in range(times - 1):
        expanded = _expand_once([expanded], k, alpha, device)
    return expanded[: len(q_feats)], expanded[len(q_feats) :]
