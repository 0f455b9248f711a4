"""Average query expansion (AQE, notes §3.5) over queries and gallery, without N × N memory.

Per round: each of the N = q + g features is replaced by the mean, over its k nearest features
by cosine similarity (itself included), of the feature times similarity^α; the next round ranks
by the new features (normalised). The reference computes the full N × N similarity matrix; here
the neighbours come from `nearest_neighbours` and each mean gathers only its k rows.
"""

import numpy as np
import torch

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.knn import nearest_neighbours
from reid_platform.evaluation.rerank_scores import resolve_device


def _expand_once(features: np.ndarray, k: int, alpha: float, device: str) -> np.ndarray:
    """(n, d) features → (n, d) similarity-weighted means over each row's k nearest rows."""
    neighbours = nearest_neighbours(features, k, metric="cosine", device=device)
    similarities = 1.0 - neighbours.distances.astype(np.float32)
    weights = np.power(similarities, np.float32(alpha)) / neighbours.indices.shape[1]
    # A weighted sum of k gathered rows per row: torch's embedding bag does it threaded and
    # vectorised, 3-5x faster than scipy's single-threaded sparse product (measured).
    means = torch.nn.functional.embedding_bag(
        torch.from_numpy(neighbours.indices),
        torch.from_numpy(features),
        per_sample_weights=torch.from_numpy(weights),
        mode="sum",
    )
    return means.numpy()


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
    features = np.concatenate([q_feats, g_feats]).astype(np.float32, copy=False)
    for _ in range(times):
        features = _expand_once(features, min(k, len(features)), alpha, device)
    return features[: len(q_feats)], features[len(q_feats) :]
