"""The images an export is verified on: whole validation identities, as the test loader gives them.

Parity, the exported model's validation mAP and INT8 calibration all read the same images:
validation query and gallery records, resized by the test transforms (0-255, no mean/std: the
model normalises), whole identities in ascending pid order until `limit` images, and never fewer
than the parity check's largest batch (`MIN_IMAGES`, 7): with a small limit and large identities
the first identities are kept whole even past the limit. A config
without a validation split falls back to training images, good for parity and calibration
only: no mAP is measured then (the manifest's `validation_map` is null).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from reid_platform.config import ReidConfig
from reid_platform.data.build import ReidData, build_test_loader
from reid_platform.data.records import ImageRecord
from reid_platform.export.errors import ExportError
from reid_platform.export.parity import DEFAULT_BATCH_SIZES
from reid_platform.export.validation_map import LabeledImages

logger = logging.getLogger(__name__)

ImageSource = Literal["validation", "train"]

MIN_IMAGES = max(DEFAULT_BATCH_SIZES)
"""Parity runs a batch of this many images, so at least this many are always selected."""


@dataclass(frozen=True)
class ValidationImages:
    """query / gallery: the images with raw pids and camids (gallery empty for `train`).

    source: `validation` (query and gallery of the validation split: mAP can be measured) or
    `train` (training images, no validation split: parity and calibration only).
    """

    query: LabeledImages
    gallery: LabeledImages
    source: ImageSource

    @property
    def measures_map(self) -> bool:
        return self.source == "validation"

    @property
    def images(self) -> torch.Tensor:
        """All images, query first: (n, 3, H, W) 0-255."""
        return torch.cat([self.query.images, self.gallery.images])

    def __len__(self) -> int:
        return len(self.query.images) + len(self.gallery.images)


def whole_identities(
    query: Sequence[ImageRecord],
    gallery: Sequence[ImageRecord],
    *,
    limit: int,
    minimum: int = 0,
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The records of whole identities (query and gallery images), in ascending pid order,
    keeping an identity if its images still fit within `limit` images in all, or while fewer
    than `minimum` are kept (then the total may exceed `limit`, by less than one identity).

    Records keep their order within each of `query` and `gallery`.
    """
    counts: dict[int, int] = {}
    for record in (*query, *gallery):
        counts[record.pid] = counts.get(record.pid, 0) + 1
    chosen: set[int] = set()
    total = 0
    for pid in sorted(counts):
        if total < minimum or total + counts[pid] <= limit:
            chosen.add(pid)
            total += counts[pid]
    return [r for r in query if r.pid in chosen], [r for r in gallery if r.pid in chosen]


def load_validation_images(config: ReidConfig, data: ReidData, *, limit: int) -> ValidationImages:
    """At most `limit` validation images of whole identities (`limit` is
    `export.validation_images`), but at least `MIN_IMAGES`, through `build_test_loader`.

    Without a validation split (empty validation query or gallery), whole training identities
    instead, all as `query`, with `source="train"`. Raises `ExportError` when the split holds
    fewer than `MIN_IMAGES` images in all.
    """
    if data.val_query.records and data.val_gallery.records:
        query, gallery = whole_identities(
            data.val_query.records, data.val_gallery.records, limit=limit, minimum=MIN_IMAGES
        )
        source: ImageSource = "validation"
    else:
        query, gallery = whole_identities(data.train.records, (), limit=limit, minimum=MIN_IMAGES)
        source = "train"
    if len(query) + len(gallery) < MIN_IMAGES:
        split = "validation split" if source == "validation" else "training set"
        raise ExportError(
            f"export verification needs at least {MIN_IMAGES} images (the parity batch), but the "
            f"{split} has only {len(query) + len(gallery)}; export.validation_images cannot help"
        )
    loaded = ValidationImages(_load(config, query), _load(config, gallery), source=source)
    if source == "train":
        logger.info(
            "export verification uses %d training images for parity only: the config has no "
            "validation split, so no validation mAP is measured (validation_map is null)",
            len(loaded),
        )
    else:
        logger.info(
            "export verification uses %d validation images (%d query, %d gallery)",
            len(loaded),
            len(query),
            len(gallery),
        )
    return loaded


def _load(config: ReidConfig, records: Sequence[ImageRecord]) -> LabeledImages:
    """`records` through the test loader: uint8 (n, 3, H, W) images, pids, camids."""
    if not records:
        height, width = config.input.size_test
        return LabeledImages(
            torch.zeros((0, 3, height, width), dtype=torch.uint8),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
        )
    images, pids, camids = [], [], []
    for batch in build_test_loader(config.data, config.input, records):
        images.append(batch["images"])
        pids.append(batch["pids"].numpy())
        camids.append(batch["camids"].numpy())
    return LabeledImages(
        torch.cat(images),
        np.concatenate(pids).astype(np.int64),
        np.concatenate(camids).astype(np.int64),
    )
