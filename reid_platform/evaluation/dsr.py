"""Deep Spatial feature Reconstruction (DSR) for partial re-id (He et al., CVPR 2018, §5.1).

A query's backbone map X (C × n locations) is reconstructed from a gallery map G (C × m
locations), which needs no alignment between a partial query and a whole gallery image:

- Every location vector is L2-normalised over channels first (the reference does the same), so
  each per-location residual lies in [0, 1] whatever the backbone's activation scale.
- `method="reconstruction"` (the paper's distance, ridge instead of its L1 coding):
  W = (GᵀG + κI)⁻¹ GᵀX, residual_j = ‖x_j − G w_j‖ for every query location j.
  `method="best_match"` (FastReID's `compute_dsr_dist`): residual_j = 1 − max_i cos(x_j, g_i).
- DSR distance = Σ_j a_j · residual_j with location weights a summing to 1: `uniform` (the mean
  over locations) or `norm` (the locations' pre-normalisation norms, so strongly activated,
  usually foreground, locations count more; the reference used its learned attention scores).
  All-zero locations get weight 0; a query whose map is all zero is at DSR distance 0 of all.
- Only each query's `top_k` gallery candidates by global distance are scored (ties by gallery
  index), as in the reference. Pairs are grouped by gallery item, so each item's
  A = (GᵀG + κI)⁻¹ (m × m, float64) is computed once, in chunks bounded by
  `MEMORY_BUDGET_BYTES`. A pair then costs one float32 product B = GᵀX (2·C·m·n flops, as the
  reference's similarity matrix) plus (m, n) float64 algebra: W = AB and
  ‖x_j − Gw_j‖² = ‖x_j‖² − w_jᵀb_j − κ‖w_j‖², so the (C, n) residual is never formed.
  Maps are read from the given arrays in slices (memory-mapped ones work), never copied whole.

Fusion (`fuse_dsr`): over all candidate pairs, the global and the DSR distances are each
min-max rescaled to [0, 1] (one affine map per matrix, so rankings within and comparisons
across queries are kept), then fused = (1 − w)·global + w·dsr ∈ [0, 1]. A non-candidate gets
2 + (its global distance − the row's largest candidate global distance) ≥ 2: strictly behind
every candidate, still in global order. With w = 0 the ranking is the global one.

The fusion weight must be chosen on a validation split (`choose_dsr_weight`), never on the
test set; the reference swept it on the test set and reported the best Rank-1.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from reid_platform.errors import EvaluationError

DsrMethod = Literal["reconstruction", "best_match"]
LocationWeighting = Literal["uniform", "norm"]

DEFAULT_DSR_WEIGHTS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
"""Fusion weights tried by default: 0, 0.05, ..., 1."""

MEMORY_BUDGET_BYTES = 256 * 2**20
"""Bound on the working tensors of one gallery chunk and of one batch of pairs each."""

_ROW_CHUNK = 1024  # rows of the global distance matrix handled at once by the top-k selection


@dataclass(frozen=True)
class DsrDistances:
    """DSR distances of each query's gallery candidates (a sparse (q, g) matrix).

    indices: (q, k) int64 gallery indices, by ascending global distance (ties by index).
    distances: (q, k) float32 DSR distances (in [0, 1]) of those pairs.
    """

    indices: np.ndarray
    distances: np.ndarray


def top_k_candidates(distmat: np.ndarray, k: int) -> np.ndarray:
    """(q, g) distances → (q, k) int64: each row's k nearest, ascending, ties by index."""
    num_gallery = distmat.shape[1]
    out = np.empty((distmat.shape[0], k), dtype=np.int64)
    for start in range(0, distmat.shape[0], _ROW_CHUNK):
        block = distmat[start : start + _ROW_CHUNK]
        if k == num_gallery:
            out[start : start + len(block)] = np.argsort(block, axis=1, kind="stable")
            continue
        kth = np.partition(block, k - 1, axis=1)[:, k - 1 : k]
        below = block < kth
        tied = block == kth
        room = k - below.sum(axis=1, keepdims=True)
        # among values equal to the k-th, the lowest gallery indices fill the remaining room
        keep = below | (tied & (np.cumsum(tied, axis=1) <= room))
        chosen = np.nonzero(keep)[1].reshape(len(block), k)
        order = np.argsort(np.take_along_axis(block, chosen, axis=1), axis=1, kind="stable")
        out[start : start + len(block)] = np.take_along_axis(chosen, order, axis=1)
    return out


def dsr_distances(
    q_spatial: np.ndarray,
    g_spatial: np.ndarray,
    global_distmat: np.ndarray,
    *,
    top_k: int = 100,
    ridge: float = 1e-3,
    method: DsrMethod = "reconstruction",
    weighting: LocationWeighting = "uniform",
    device: str = "cpu",
) -> DsrDistances:
    """DSR distances of each query to its `top_k` nearest gallery items by `global_distmat`.

    q_spatial: (q, C, h, w) query maps; g_spatial: (g, C, h', w') gallery maps (sizes may
    differ); global_distmat: (q, g) global distances. `ridge` is κ of the reconstruction.
    """
    queries, gallery = _locations(q_spatial, "query"), _locations(g_spatial, "gallery")
    _check_inputs(queries, gallery, global_distmat, top_k, ridge, method, weighting)
    top = min(top_k, gallery.shape[0])
    candidates = top_k_candidates(global_distmat, top)
    inverse_norms, weights = _query_locations(queries, weighting)
    distances = np.empty(candidates.shape, dtype=np.float32)
    flat_gallery = candidates.ravel()
    by_gallery = np.argsort(flat_gallery, kind="stable")  # flat pair indices grouped by item
    sorted_gallery = flat_gallery[by_gallery]
    items = np.unique(flat_gallery)
    channels, m = gallery.shape[1], gallery.shape[2]
    item_chunk = max(1, MEMORY_BUDGET_BYTES // (8 * channels * m + 24 * m * m))
    for start in range(0, len(items), item_chunk):
        chunk = items[start : start + item_chunk]
        reference = _GalleryChunk.build(gallery[chunk], ridge, method, device)
        low, high = np.searchsorted(sorted_gallery, [chunk[0], chunk[-1] + 1])
        pairs = by_gallery[low:high]
        local = np.searchsorted(chunk, flat_gallery[pairs])
        scored = _score_pairs(queries, inverse_norms, reference, pairs, local, top, ridge, device)
        for rows, values in scored:
            distances.ravel()[rows] = (values * weights[rows // top]).sum(axis=1)
    return DsrDistances(indices=candidates, distances=distances)


@dataclass(frozen=True)
class _GalleryChunk:
    """Gallery items' unit locations (items, C, m) float32 (numpy: its row gathers are several
    times faster than torch's on CPU) and, for reconstruction, (GᵀG + κI)⁻¹ (items, m, m)
    float64 on the device."""

    unit: np.ndarray
    inverse: Tensor | None

    @classmethod
    def build(
        cls, maps: np.ndarray, ridge: float, method: DsrMethod, device: str
    ) -> "_GalleryChunk":
        unit = np.asarray(maps, dtype=np.float32)
        norms = np.linalg.norm(unit, axis=1, keepdims=True)
        unit = unit / np.maximum(norms, np.finfo(np.float32).tiny)
        if method == "best_match":
            return cls(unit, None)
        tensor = torch.from_numpy(unit).to(device)
        shifted = torch.bmm(tensor.transpose(1, 2), tensor).double()
        shifted.diagonal(dim1=1, dim2=2).add_(ridge)
        factors, info = torch.linalg.cholesky_ex(shifted)
        if bool((info != 0).any()):
            raise EvaluationError(f"DSR ridge {ridge} is too small to solve stably; use e.g. 1e-3")
        # A = L⁻ᵀL⁻¹ from the triangular inverse: torch's batched `cholesky_inverse` is up to 20×
        # slower on a busy CPU
        eye = torch.eye(shifted.shape[1], dtype=shifted.dtype, device=shifted.device)
        lower_inverse = torch.linalg.solve_triangular(factors, eye.expand_as(factors), upper=False)
        return cls(unit, lower_inverse.transpose(1, 2) @ lower_inverse)


def _score_pairs(
    queries: np.ndarray,
    inverse_norms: np.ndarray,
    reference: _GalleryChunk,
    pairs: np.ndarray,
    local: np.ndarray,
    k: int,
    ridge: float,
    device: str,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (flat pair indices, (P, n) float32 per-location residuals) in bounded batches.

    queries: (q, C, n) raw maps; inverse_norms: (q, n) float64 1/‖x_j‖ (0 for zero locations);
    local: each pair's item in `reference`; flat pair index p is query p // k's candidate.
    """
    channels, n, m = queries.shape[1], queries.shape[2], reference.unit.shape[2]
    batch = max(1, MEMORY_BUDGET_BYTES // (4 * channels * (n + m) + 8 * m * m + 40 * m * n))
    for start in range(0, len(pairs), batch):
        chosen, items = pairs[start : start + batch], local[start : start + batch]
        x = torch.from_numpy(np.ascontiguousarray(queries[chosen // k], dtype=np.float32))
        g = torch.from_numpy(reference.unit[items]).to(device)
        scale = torch.from_numpy(inverse_norms[chosen // k]).to(device)[:, None, :]  # (P, 1, n)
        # Gᵀx̂ = (Gᵀx)/‖x‖: query locations are normalised after the product (in float64, so
        # that ‖x̂‖² is exactly 1 in the residual formula), an (m, n) scaling only
        similarity = torch.bmm(g.transpose(1, 2), x.to(device)).double().mul_(scale)
        if reference.inverse is None:
            residuals = (1.0 - similarity.amax(dim=1)).clamp_(min=0.0)  # rounding: cos ≤ 1
        else:
            inverse = reference.inverse[torch.from_numpy(items).to(device)]
            present = (scale[:, 0, :] > 0).double()  # ‖x̂_j‖²: 1, or 0 for an empty location
            residuals = _reconstruction_residuals(similarity, inverse, present, ridge)
        yield chosen, residuals.float().cpu().numpy()


def _reconstruction_residuals(
    projections: Tensor, inverse: Tensor, squared_norms: Tensor, ridge: float
) -> Tensor:
    """Per-location ‖x − Gw‖ (P, n) from B = GᵀX (P, m, n), (GᵀG + κI)⁻¹ (P, m, m) and ‖x_j‖²
    (P, n), all float64, without forming the (C, n) residual: with W = (GᵀG + κI)⁻¹B,
    ‖x − Gw‖² = ‖x‖² − wᵀb − κ‖w‖². Only this (m, n) algebra is float64; in float32 the
    cancellation near a zero residual would cost about 1e-3."""
    coefficients = torch.bmm(inverse, projections)  # W, (P, m, n)
    squared = (
        squared_norms
        - (coefficients * projections).sum(dim=1)
        - ridge * coefficients.square().sum(dim=1)
    )
    return squared.clamp_(min=0.0).sqrt_()


def _query_locations(
    queries: np.ndarray, weighting: LocationWeighting
) -> tuple[np.ndarray, np.ndarray]:
    """(q, C, n) query maps → (q, n) float64 inverse location norms (0 for zero locations) and
    (q, n) float32 location weights summing to 1 (all 0 for an all-zero map)."""
    inverse_norms = np.zeros((queries.shape[0], queries.shape[2]), dtype=np.float64)
    weights = np.empty(inverse_norms.shape, dtype=np.float32)
    chunk = max(1, MEMORY_BUDGET_BYTES // (8 * queries.shape[1] * queries.shape[2]))
    for start in range(0, queries.shape[0], chunk):
        rows = slice(start, start + chunk)
        norms = np.linalg.norm(np.asarray(queries[rows], dtype=np.float64), axis=1)
        np.divide(1.0, norms, out=inverse_norms[rows], where=norms > 0)
        raw = norms if weighting == "norm" else (norms > 0).astype(np.float64)
        total = raw.sum(axis=1, keepdims=True)
        weights[rows] = raw / np.maximum(total, np.finfo(np.float64).tiny)
    return inverse_norms, weights


def _locations(spatial: np.ndarray, name: str) -> np.ndarray:
    """(n, C, h, w) or (n, C, L) maps → (n, C, locations) view."""
    if not isinstance(spatial, np.ndarray) or spatial.ndim not in (3, 4):
        shape = getattr(spatial, "shape", type(spatial).__name__)
        raise EvaluationError(f"{name} spatial maps must be an (n, C, h, w) array, got {shape}")
    return spatial.reshape(spatial.shape[0], spatial.shape[1], -1)


def _check_inputs(
    queries: np.ndarray,
    gallery: np.ndarray,
    distmat: np.ndarray,
    top_k: int,
    ridge: float,
    method: str,
    weighting: str,
) -> None:
    if distmat.shape != (queries.shape[0], gallery.shape[0]):
        raise EvaluationError(
            f"global distances have shape {distmat.shape} but the spatial maps give "
            f"({queries.shape[0]}, {gallery.shape[0]}) query × gallery pairs"
        )
    if queries.shape[1] != gallery.shape[1]:
        raise EvaluationError(
            f"query maps have {queries.shape[1]} channels but gallery maps {gallery.shape[1]}"
        )
    if 0 in queries.shape or 0 in gallery.shape:
        raise EvaluationError("DSR needs at least one query, gallery item, channel and location")
    if not np.isfinite(distmat).all():
        raise EvaluationError("global distances contain NaN or infinite values")
    if top_k < 1 or ridge <= 0:
        raise EvaluationError(f"DSR needs top_k ≥ 1 and ridge > 0, got {top_k} and {ridge}")
    if method not in ("reconstruction", "best_match") or weighting not in ("uniform", "norm"):
        raise EvaluationError(f"unknown DSR method {method!r} or weighting {weighting!r}")


def fuse_dsr(global_distmat: np.ndarray, dsr: DsrDistances, weight: float) -> np.ndarray:
    """(q, g) global distances + DSR of the candidates → (q, g) float32 fused distances.

    See the module docstring: candidates get (1 − weight)·global + weight·dsr, both min-max
    rescaled over all candidate pairs; non-candidates stay behind them in global order.
    """
    if not 0.0 <= weight <= 1.0:
        raise EvaluationError(f"DSR fusion weight must be in [0, 1], got {weight}")
    q = global_distmat.shape[0] if global_distmat.ndim == 2 else -1
    if dsr.indices.shape != dsr.distances.shape or dsr.indices.shape[0] != q:
        raise EvaluationError(
            f"DSR candidates {dsr.indices.shape} do not match global distances "
            f"{global_distmat.shape}"
        )
    candidate_global = np.take_along_axis(global_distmat, dsr.indices, axis=1)
    fused = (1.0 - weight) * _min_max(candidate_global) + weight * _min_max(dsr.distances)
    out = np.subtract(global_distmat, candidate_global.max(axis=1, keepdims=True), dtype=np.float32)
    out += 2.0
    np.put_along_axis(out, dsr.indices, fused.astype(np.float32), axis=1)
    return out


def _min_max(values: np.ndarray) -> np.ndarray:
    """Affine map of `values` onto [0, 1] (all zeros when they are all equal), float64."""
    array = np.asarray(values, dtype=np.float64)
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def choose_dsr_weight(
    global_distmat: np.ndarray,
    dsr: DsrDistances,
    evaluate: Callable[[np.ndarray], float],
    *,
    weights: Sequence[float] = DEFAULT_DSR_WEIGHTS,
) -> tuple[float, np.ndarray]:
    """The fusion weight maximising `evaluate(fuse_dsr(global_distmat, dsr, weight))`.

    Call it with a VALIDATION split's distances and DSR (e.g. `evaluate` = the validation mAP),
    never with the test set, then apply the chosen weight to the test distances. Returns
    (best weight, (len(weights),) float64 scores); ties go to the earliest weight, NaN loses.
    """
    if len(weights) == 0:
        raise EvaluationError("choose_dsr_weight needs at least one candidate weight")
    scores = np.array(
        [float(evaluate(fuse_dsr(global_distmat, dsr, float(w)))) for w in weights],
        dtype=np.float64,
    )
    if np.isnan(scores).all():
        raise EvaluationError("every DSR fusion weight scored NaN on the validation split")
    best = int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))
    return float(weights[best]), scores
