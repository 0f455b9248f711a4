"""Parity of an exported model with eager PyTorch: max abs difference and min cosine similarity.

The reference is the same `ExportedEmbedder` run eagerly (eval mode, float32), so a difference
is the exporter's or the runtime's, never a different computation. Every requested batch size
runs over all images (e.g. 1 and 7: batch 1 and a batch that is neither 1 nor the tracing
batch), and the worst difference over all of them is reported.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from reid_platform.export.embedder import ExportedEmbedder, eval_mode
from reid_platform.export.errors import ExportError
from reid_platform.export.onnx_export import OnnxExport
from reid_platform.export.onnx_runtime import OnnxRuntimeEmbedder, as_float32_images

EmbedFn = Callable[[np.ndarray], np.ndarray]
"""(B, 3, H, W) float32 0-255 host images → (B, D) float32 embeddings, one call per batch."""

DEFAULT_BATCH_SIZES = (1, 7)


@dataclass(frozen=True, slots=True)
class ParityReport:
    """Exported vs eager PyTorch embeddings of `num_images` images at each of `batch_sizes`.

    max_abs_diff: max over images and dimensions of |exported − pytorch|.
    min_cosine: min over images of the cosine similarity of the two embeddings.
    """

    max_abs_diff: float
    min_cosine: float
    batch_sizes: tuple[int, ...]
    num_images: int

    def within(self, max_abs_diff: float) -> bool:
        """Whether the worst absolute difference is at most `max_abs_diff`."""
        return self.max_abs_diff <= max_abs_diff


def pytorch_embeddings(
    model: nn.Module, images: Tensor | np.ndarray, *, normalize: bool, batch_size: int = 32
) -> np.ndarray:
    """(n, 3, H, W) 0-255 images → (n, D) float32 eager embeddings on the model's device."""
    device = next(model.parameters()).device
    embedder = ExportedEmbedder(model, normalize=normalize)
    host = as_float32_images(images)
    chunks = []
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(host), batch_size):
            batch = torch.from_numpy(host[start : start + batch_size]).to(device)
            chunks.append(embedder(batch).float().cpu().numpy())
    return np.concatenate(chunks)


def embed_in_batches(embed: EmbedFn, images: Tensor | np.ndarray, batch_size: int) -> np.ndarray:
    """(n, 3, H, W) images → (n, D), calling `embed` on consecutive batches of `batch_size`."""
    host = as_float32_images(images)
    return np.concatenate(
        [embed(host[start : start + batch_size]) for start in range(0, len(host), batch_size)]
    )


def compare_embeddings(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(n, D) and (n, D) → (max abs difference, min row cosine similarity)."""
    if reference.shape != candidate.shape:
        raise ExportError(
            f"the exported model gives embeddings of shape {candidate.shape}, "
            f"PyTorch {reference.shape}"
        )
    max_abs = float(np.max(np.abs(reference.astype(np.float64) - candidate)))
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    dots = np.sum(reference.astype(np.float64) * candidate, axis=1)
    cosine = dots / np.maximum(norms, np.finfo(np.float32).tiny)
    return max_abs, float(np.min(cosine))


def check_parity(
    embed: EmbedFn,
    reference: np.ndarray,
    images: Tensor | np.ndarray,
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
) -> ParityReport:
    """Run `embed` over `images` at each batch size and compare with `reference` (n, D)."""
    if len(images) < max(batch_sizes):
        raise ExportError(
            f"parity needs at least {max(batch_sizes)} images to run batch size "
            f"{max(batch_sizes)}, got {len(images)}"
        )
    worst_abs, worst_cosine = 0.0, 1.0
    for batch_size in batch_sizes:
        max_abs, min_cosine = compare_embeddings(
            reference, embed_in_batches(embed, images, batch_size)
        )
        worst_abs, worst_cosine = max(worst_abs, max_abs), min(worst_cosine, min_cosine)
    return ParityReport(worst_abs, worst_cosine, tuple(batch_sizes), len(images))


def verify_onnx(
    exported: OnnxExport,
    model: nn.Module,
    images: Tensor | np.ndarray,
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    threads: int | None = None,
) -> ParityReport:
    """onnxruntime (CPU) on `exported` vs eager `model` on `images` (n, 3, H, W), 0-255 RGB."""
    reference = pytorch_embeddings(model, images, normalize=exported.normalized)
    runtime = OnnxRuntimeEmbedder(exported.path, threads=threads)
    return check_parity(runtime, reference, images, batch_sizes=batch_sizes)
