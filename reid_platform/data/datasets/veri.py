"""VeRi-776: `VeRi/{image_train,image_query,image_test}/*.jpg` (a lower-case `veri/` works too).

File names are `<vid>_c<cam:03d>_<frame>_<n>.jpg`, e.g. `0001_c001_00016450_0.jpg`; cameras 1-20
become 0-19. 576 training vehicles, 200 test vehicles (1,678 queries, 11,579 gallery images).
"""

import logging
import re
from pathlib import Path
from typing import ClassVar

from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import (
    check_records,
    find_base,
    list_images,
    parse_name,
    require_records,
)
from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.errors import DatasetError

logger = logging.getLogger(__name__)

VERI_NAME = re.compile(r"^(\d+)_c(\d{3})")
VERI_SPLIT_FOLDERS = ("image_train", "image_query", "image_test")


@DATASETS.register("veri")
class VeRiDataset:
    """VeRi-776 (Liu et al., ICME 2016), read from `root/VeRi`, `root/veri` or `root`."""

    name: ClassVar[str] = "veri"
    folder_names: ClassVar[tuple[str, ...]] = ("VeRi", "veri")
    example: ClassVar[str] = "0001_c001_00016450_0.jpg"

    def __init__(self, *, root: Path) -> None:
        self.root = Path(root)

    def load(self) -> DatasetSplits:
        """Scan `image_train` (train), `image_query` (query) and `image_test` (gallery)."""
        base = find_base(
            self.root, candidates=self.folder_names, required=VERI_SPLIT_FOLDERS, dataset=self.name
        )
        train, query, gallery = (
            self._scan(base / folder, split)
            for folder, split in zip(
                VERI_SPLIT_FOLDERS, ("training", "query", "gallery"), strict=True
            )
        )
        logger.info(
            "veri: %d train, %d query, %d gallery images", len(train), len(query), len(gallery)
        )
        return DatasetSplits(
            name=self.name,
            train=make_split("train", train),
            query=make_split("query", query),
            gallery=make_split("gallery", gallery),
            notes=(f"read {base}",),
        )

    def _scan(self, folder: Path, split: str) -> list[ImageRecord]:
        records = []
        for path in list_images(folder):
            vid, cam = parse_name(path, VERI_NAME, self.example)
            if cam < 1:
                raise DatasetError(
                    f"image file {path} has camera number {cam} (expected c001 to c020, "
                    f"e.g. {self.example})"
                )
            records.append(ImageRecord(path=path, pid=vid, camid=cam - 1, dataset=self.name))
        require_records(records, folder, split)
        check_records(records)
        return records
