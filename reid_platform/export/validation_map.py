"""Validation mAP of an exported model next to the PyTorch model's, through the same evaluator.

PyTorch side: `evaluation.extract_features` (the evaluator's own feature: `model(images)
.embedding` in eval mode), L2-normalised when the export normalises, so both sides compute the
same function. Flip TTA is not part of an exported graph and is not applied on either side.
With the cosine metric (the default) normalising changes nothing, so the PyTorch mAP is the
evaluator's `eval/mAP` without flip; with a euclidean metric both sides rank normalised rows.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from reid_platform.evaluation import Evaluator, FeatureSet, extract_features, l2_normalize
from reid_platform.export.errors import ExportError
from reid_platform.export.parity import EmbedFn, embed_in_batches


@dataclass(frozen=True)
class LabeledImages:
    """Images (n, 3, H, W) RGB 0-255 (uint8 or float) with their pids and camids (n,)."""

    images: Tensor
    pids: np.ndarray
    camids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.pids.shape != (n,) or self.camids.shape != (n,):
            raise ExportError(
                f"labeled images need images (n, 3, H, W) and pids, camids (n,); got "
                f"{tuple(self.images.shape)}, {self.pids.shape}, {self.camids.shape}"
            )

    def batches(self, batch_size: int) -> Iterator[dict[str, Tensor]]:
        """Loader-style batches (`images`, `pids`, `camids`), as `extract_features` reads them."""
        for start in range(0, len(self.images), batch_size):
            stop = start + batch_size
            yield {
                "images": self.images[start:stop],
                "pids": torch.from_numpy(self.pids[start:stop]),
                "camids": torch.from_numpy(self.camids[start:stop]),
            }


@dataclass(frozen=True, slots=True)
class MapComparison:
    """Validation mAP (fraction in [0, 1]) of the exported model and of PyTorch."""

    exported_map: float
    pytorch_map: float

    @property
    def difference(self) -> float:
        """exported − PyTorch."""
        return self.exported_map - self.pytorch_map


def validation_map(
    embed: EmbedFn,
    model: nn.Module,
    query: LabeledImages,
    gallery: LabeledImages,
    *,
    evaluator: Evaluator,
    normalized: bool,
    batch_size: int = 32,
) -> MapComparison:
    """mAP of `embed`'s embeddings (e.g. an `OnnxRuntimeEmbedder`) vs `model`'s, same evaluator.

    normalized: whether `embed` returns L2-normalised rows (the export's `normalized`).
    """
    device = next(model.parameters()).device
    exported: list[FeatureSet] = []
    reference: list[FeatureSet] = []
    for images in (query, gallery):
        exported.append(
            FeatureSet(
                embed_in_batches(embed, images.images, batch_size),
                images.pids.astype(np.int64),
                images.camids.astype(np.int64),
                (),
            )
        )
        features = extract_features(model, images.batches(batch_size), device=device)
        if normalized:
            features = FeatureSet(
                l2_normalize(features.features), features.pids, features.camids, ()
            )
        reference.append(features)
    return MapComparison(
        exported_map=evaluator.evaluate(*exported).ranking.mAP,
        pytorch_map=evaluator.evaluate(*reference).ranking.mAP,
    )
