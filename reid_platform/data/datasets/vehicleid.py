"""PKU VehicleID (Liu et al., CVPR 2016): `VehicleID_V1.0/image/<imgid>.jpg` + `train_test_split/`.

`train_test_split/train_list.txt` (13,164 vehicles) and `test_list_{800,1600,2400}.txt` (the
small / medium / large test sets) hold lines `<imgid> <vid>`. VehicleID has no camera labels and
no query / gallery split: for each test vehicle one image goes to the gallery and the rest are
queries.

Differences from the reference, on purpose:
- the reference picks the gallery image with an unseeded `random.shuffle` on every construction,
  so every evaluation (and every worker) sees a different split; here the choice is drawn from a
  `random.Random(gallery_seed)` over vehicles in sorted order, so one seed gives one split;
- camera ids are the record's running index in its list file (the reference uses the image id):
  either way every image is its own "camera" and no same-camera gallery removal happens.
"""

import logging
import random
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Literal

from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import (
    check_records,
    find_base,
    plural,
    read_list,
    require_records,
)
from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.errors import DatasetError

logger = logging.getLogger(__name__)

VehicleIDTestSize = Literal["small", "medium", "large"]
TEST_LIST_IDS: Mapping[str, int] = MappingProxyType({"small": 800, "medium": 1600, "large": 2400})
_LINE_EXAMPLE = "0004286 0"


@DATASETS.register("vehicleid")
class VehicleIDDataset:
    """VehicleID; `test_size` picks the 800 / 1600 / 2400-vehicle test list.

    The root may hold `VehicleID_V1.0/` or `vehicleid/`, or be that folder itself.
    """

    name: ClassVar[str] = "vehicleid"
    folder_names: ClassVar[tuple[str, ...]] = ("VehicleID_V1.0", "vehicleid")

    def __init__(
        self, *, root: Path, test_size: VehicleIDTestSize = "small", gallery_seed: int = 0
    ) -> None:
        self.root = Path(root)
        self.test_size = test_size
        self.gallery_seed = gallery_seed

    def load(self) -> DatasetSplits:
        """Read the train list and the chosen test list; draw the gallery with `gallery_seed`."""
        base = find_base(
            self.root,
            candidates=self.folder_names,
            required=("image", "train_test_split"),
            dataset=self.name,
        )
        split_dir = base / "train_test_split"
        train = self._read(split_dir / "train_list.txt", base / "image")
        test_file = split_dir / f"test_list_{TEST_LIST_IDS[self.test_size]}.txt"
        test = self._read(test_file, base / "image")
        query, gallery = split_query_gallery(test, seed=self.gallery_seed)
        logger.info(
            "vehicleid: %d train, %d query, %d gallery", len(train), len(query), len(gallery)
        )
        return DatasetSplits(
            name=self.name,
            train=make_split("train", train),
            query=make_split("query", query),
            gallery=make_split("gallery", gallery),
            notes=(
                f"read {base}, test list {test_file.name}",
                f"gallery: one image per vehicle drawn with gallery_seed={self.gallery_seed} "
                f"({plural(len(gallery), 'image')}); query: the other {len(query)}",
                "camera ids are per-image indices, so no same-camera gallery images are removed",
            ),
        )

    def _read(self, list_file: Path, image_dir: Path) -> list[ImageRecord]:
        lines = read_list(list_file, expected=f"lines like '{_LINE_EXAMPLE}'", dataset=self.name)
        records = []
        for index, (number, text) in enumerate(lines):
            fields = text.split()
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise DatasetError(
                    f"line {number} of {list_file} reads {text!r} (expected '<imgid> <vid>', "
                    f"e.g. '{_LINE_EXAMPLE}')"
                )
            path = image_dir / f"{fields[0]}.jpg"
            records.append(
                ImageRecord(path=path, pid=int(fields[1]), camid=index, dataset=self.name)
            )
        require_records(records, list_file, "listed")
        check_records(records, listed_in=list_file)
        return records


def split_query_gallery(
    records: list[ImageRecord], *, seed: int
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(query, gallery): one gallery image per pid drawn with `random.Random(seed)`.

    Pids are visited in sorted order, so the result depends only on the records and the seed. Both
    lists keep the input order; a pid with a single image has no query.
    """
    positions: dict[int, list[int]] = defaultdict(list)
    for position, record in enumerate(records):
        positions[record.pid].append(position)
    rng = random.Random(seed)
    chosen = {rng.choice(positions[pid]) for pid in sorted(positions)}
    gallery = [record for position, record in enumerate(records) if position in chosen]
    query = [record for position, record in enumerate(records) if position not in chosen]
    return query, gallery
