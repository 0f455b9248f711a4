"""VERI-Wild (Lou et al., CVPR 2019): `VERI-Wild/images/<vid>/<imgid>.jpg` + `train_test_split/`.

`train_test_split/` holds `train_list.txt`, `test_{3000,5000,10000}.txt` (the small / medium /
large test sets) and `test_{3000,5000,10000}_query.txt`, with lines `<vid>/<imgid>`, and
`vehicle_info.txt` (a header line, then `<vid>/<imgid>;<camid>;<time>;<model>;<type>;<color>`),
the only source of camera ids, which are kept as they are (1-174).

As in the reference, the gallery is the whole test list, so it also holds the query images (3,000
queries in 41,861 test images for the small set); evaluation removes gallery images of the same
vehicle and camera as the query, which removes each query's own copy.
"""

import logging
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

VeRiWildTestSize = Literal["small", "medium", "large"]
TEST_LIST_IDS: Mapping[str, int] = MappingProxyType({"small": 3000, "medium": 5000, "large": 10000})
_INFO_EXAMPLE = "00001/000001;16;2018-03-11 12:37:17;Audi A4L;Sedan;black"


@DATASETS.register("veriwild")
class VeRiWildDataset:
    """VERI-Wild; `test_size` picks the 3000 / 5000 / 10000-vehicle test set.

    The root may hold `VERI-Wild/` or be that folder itself.
    """

    name: ClassVar[str] = "veriwild"
    folder_names: ClassVar[tuple[str, ...]] = ("VERI-Wild",)

    def __init__(self, *, root: Path, test_size: VeRiWildTestSize = "small") -> None:
        self.root = Path(root)
        self.test_size = test_size

    def load(self) -> DatasetSplits:
        """Read the lists; camera ids come from `vehicle_info.txt`."""
        base = find_base(
            self.root,
            candidates=self.folder_names,
            required=("images", "train_test_split"),
            dataset=self.name,
        )
        split_dir = base / "train_test_split"
        cameras = self._read_cameras(split_dir / "vehicle_info.txt")
        size = TEST_LIST_IDS[self.test_size]
        train = self._read(split_dir / "train_list.txt", base / "images", cameras)
        gallery = self._read(split_dir / f"test_{size}.txt", base / "images", cameras)
        query = self._read(split_dir / f"test_{size}_query.txt", base / "images", cameras)
        gallery_paths = {record.path for record in gallery}
        shared = sum(1 for record in query if record.path in gallery_paths)
        logger.info(
            "veriwild: %d train, %d query, %d gallery", len(train), len(query), len(gallery)
        )
        return DatasetSplits(
            name=self.name,
            train=make_split("train", train),
            query=make_split("query", query),
            gallery=make_split("gallery", gallery),
            notes=(
                f"read {base}, test lists test_{size}.txt and test_{size}_query.txt",
                f"{plural(shared, 'query image')} also in the gallery (the whole test list, as "
                "in the reference; same-vehicle same-camera gallery images are removed at "
                "evaluation)",
            ),
        )

    def _read_cameras(self, info_file: Path) -> dict[str, int]:
        """`<vid>/<imgid>` → camera id, from `vehicle_info.txt` (its first line is a header)."""
        lines = read_list(info_file, expected=f"lines like '{_INFO_EXAMPLE}'", dataset=self.name)
        cameras: dict[str, int] = {}
        for number, text in lines[1:]:
            fields = text.split(";")
            if len(fields) < 2 or "/" not in fields[0] or not fields[1].strip().isdigit():
                raise DatasetError(
                    f"line {number} of {info_file} reads {text!r} (expected '{_INFO_EXAMPLE}')"
                )
            cameras[fields[0].strip()] = int(fields[1])
        return cameras

    def _read(self, list_file: Path, image_dir: Path, cameras: dict[str, int]) -> list[ImageRecord]:
        lines = read_list(list_file, expected="lines like '00001/000001'", dataset=self.name)
        records = []
        for number, text in lines:
            vid, _, imgid = text.partition("/")
            if not vid.isdigit() or not imgid:
                raise DatasetError(
                    f"line {number} of {list_file} reads {text!r} (expected '<vid>/<imgid>', "
                    "e.g. '00001/000001')"
                )
            if text not in cameras:
                raise DatasetError(
                    f"line {number} of {list_file} names image {text!r}, which vehicle_info.txt "
                    "does not list (expected a camera id for every image)"
                )
            path = image_dir / vid / f"{imgid}.jpg"
            records.append(
                ImageRecord(path=path, pid=int(vid), camid=cameras[text], dataset=self.name)
            )
        require_records(records, list_file, "listed")
        check_records(records, listed_in=list_file)
        return records
