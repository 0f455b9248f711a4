"""Synthetic evaluation cases at benchmark scale, shared by the evaluation benchmarks.

A case mimics a trained re-id model's features: each identity has a centre, each camera a
bias, each image its own noise, all in a `latent_dim` space mapped to `dim` by a fixed random
matrix, plus a small isotropic part in every direction (so features are full rank, with the
decaying spectrum real embeddings have). Gallery images of the query identities are spread over
all cameras; the rest of the gallery are distractors of identities no query has. The noise
levels give a Market-1501-like difficulty (mAP about 0.66 with cosine distance).

    python -c "from eval_cases import market_like; c = market_like(); print(c.summary())"
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EvalCase:
    """Query and gallery features (float32, (n, dim)) with raw ids and cameras (int64, (n,))."""

    q_feats: np.ndarray
    g_feats: np.ndarray
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray

    def summary(self) -> str:
        return (
            f"{len(self.q_pids)} queries x {len(self.g_pids)} gallery, "
            f"{self.q_feats.shape[1]}-d, {len(np.unique(self.q_pids))} query ids"
        )


def synthetic_case(
    *,
    num_query: int,
    num_gallery: int,
    num_ids: int,
    num_cams: int,
    dim: int = 2048,
    latent_dim: int = 256,
    distractor_fraction: float = 0.2,
    camera_scale: float = 0.65,
    image_noise: float = 1.25,
    isotropic_noise: float = 0.15,
    seed: int = 0,
) -> EvalCase:
    """A case of the given size; scales are relative to a unit-variance identity centre."""
    rng = np.random.default_rng(seed)
    num_distractors = int(num_gallery * distractor_fraction)
    q_pids = rng.permutation(np.arange(num_query) % num_ids) + 1
    g_pids = np.concatenate(
        [
            np.arange(num_gallery - num_distractors) % num_ids + 1,
            num_ids + 1 + rng.integers(0, max(num_distractors // 4, 1), num_distractors),
        ]
    )
    q_camids = rng.integers(0, num_cams, num_query)
    g_camids = rng.integers(0, num_cams, num_gallery)
    total_ids = int(g_pids.max()) + 1
    centres = rng.standard_normal((total_ids, latent_dim), dtype=np.float32)
    cameras = rng.standard_normal((num_cams, latent_dim), dtype=np.float32) * camera_scale
    mixing = rng.standard_normal((latent_dim, dim), dtype=np.float32) / np.sqrt(latent_dim)

    def features(pids: np.ndarray, camids: np.ndarray) -> np.ndarray:
        latent = centres[pids] + cameras[camids]
        latent += rng.standard_normal(latent.shape, dtype=np.float32) * image_noise
        out = latent @ mixing
        out += rng.standard_normal(out.shape, dtype=np.float32) * isotropic_noise
        return out.astype(np.float32)

    return EvalCase(
        q_feats=features(q_pids, q_camids),
        g_feats=features(g_pids, g_camids),
        q_pids=q_pids.astype(np.int64),
        g_pids=g_pids.astype(np.int64),
        q_camids=q_camids.astype(np.int64),
        g_camids=g_camids.astype(np.int64),
    )


def market_like(dim: int = 2048, seed: int = 0) -> EvalCase:
    """3,368 queries x 15,913 gallery over 751 ids and 6 cameras (Market-1501's test split)."""
    return synthetic_case(
        num_query=3368, num_gallery=15913, num_ids=751, num_cams=6, dim=dim, seed=seed
    )


def msmt_like(dim: int = 2048, seed: int = 0) -> EvalCase:
    """11,659 queries x 82,161 gallery over 3,060 ids and 15 cameras (MSMT17's test split)."""
    return synthetic_case(
        num_query=11659, num_gallery=82161, num_ids=3060, num_cams=15, dim=dim, seed=seed
    )


def small_case(seed: int = 0) -> EvalCase:
    """A few hundred images, for checking a benchmark script quickly."""
    return synthetic_case(
        num_query=200, num_gallery=900, num_ids=60, num_cams=4, dim=128, latent_dim=32, seed=seed
    )
