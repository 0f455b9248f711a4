"""MSMT17 (Wei et al., CVPR 2018): V1 `MSMT17_V1/{train,test}`, V2 `MSMT17_V2/{mask_train_v2,...}`.

Next to the image folders, `list_{train,val,query,gallery}.txt` hold lines `<relpath> <pid>`, with
relpaths like `0000/0000_000_01_0303morning_0015_0.jpg`; the third `_` field is the camera (1-15).
Query and gallery pids are numbered from 0 like the training ones, so (as the reference does) they
are offset by the number of training ids to keep test ids apart from training ids.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Literal

from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import (
    check_records,
    plural,
    read_list,
    require_records,
    require_root,
)
from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.errors import DatasetError

logger = logging.getLogger(__name__)

MSMT17Version = Literal["auto", "v1", "v2"]


@dataclass(frozen=True, slots=True)
class _VersionLayout:
    folder: str
    train_dir: str
    test_dir: str


_LAYOUTS: Mapping[str, _VersionLayout] = MappingProxyType(
    {
        "v1": _VersionLayout("MSMT17_V1", "train", "test"),
        "v2": _VersionLayout("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
    }
)
_LINE_EXAMPLE = "0000/0000_000_01_0303morning_0015_0.jpg 0"


@DATASETS.register("msmt17")
class MSMT17Dataset:
    """MSMT17: 1,041 training ids, 3,060 test ids, 15 cameras.

    `version="auto"` reads `MSMT17_V2` when present, else `MSMT17_V1` (the root may also be one of
    those folders itself). Training uses `list_train` plus, when `include_val` (the default),
    `list_val`; the reference adds `list_val` only with `combineall`, so published MSMT17 numbers
    train without it. After `load`, `official_val_pids` / `official_val_paths` name the records
    that came from `list_val`, so a validation split can hold out exactly those.
    """

    name: ClassVar[str] = "msmt17"

    def __init__(
        self, *, root: Path, version: MSMT17Version = "auto", include_val: bool = True
    ) -> None:
        self.root = Path(root)
        self.version = version
        self.include_val = include_val
        self.official_val_pids: frozenset[int] = frozenset()
        self.official_val_paths: frozenset[Path] = frozenset()

    def load(self) -> DatasetSplits:
        """Read the four list files; check every listed image exists and is readable."""
        base, layout = self._find_layout()
        train_dir, test_dir = base / layout.train_dir, base / layout.test_dir
        train = self._read(base / "list_train.txt", train_dir, offset=0)
        val = self._read(base / "list_val.txt", train_dir, offset=0)
        offset = len({record.pid for record in train})
        query = self._read(base / "list_query.txt", test_dir, offset=offset)
        gallery = self._read(base / "list_gallery.txt", test_dir, offset=offset)
        self.official_val_pids = frozenset(record.pid for record in val)
        self.official_val_paths = frozenset(record.path for record in val)
        notes = [
            f"read {base}",
            f"query and gallery ids offset by {offset} (the number of training ids)",
        ]
        if self.include_val:
            train = train + val
            notes.append(f"added {plural(len(val), 'image')} of list_val.txt to training")
        else:
            notes.append(f"left out {plural(len(val), 'image')} of list_val.txt")
        logger.info("msmt17: %d train, %d query, %d gallery", len(train), len(query), len(gallery))
        return DatasetSplits(
            name=self.name,
            train=make_split("train", train),
            query=make_split("query", query),
            gallery=make_split("gallery", gallery),
            notes=tuple(notes),
        )

    def _find_layout(self) -> tuple[Path, _VersionLayout]:
        order = ("v2", "v1") if self.version == "auto" else (self.version,)
        expected = " or ".join(f"{_LAYOUTS[v].folder}/" for v in order)
        require_root(self.root, expected=f"{expected} inside it", dataset=self.name)
        for version in order:
            layout = _LAYOUTS[version]
            if (self.root / layout.folder).is_dir():
                return self.root / layout.folder, layout
        for version in order:  # the root may be the version folder itself
            layout = _LAYOUTS[version]
            if (self.root / layout.train_dir).is_dir():
                return self.root, layout
        raise DatasetError(
            f"dataset folder {self.root} holds no {expected} folder (expected MSMT17_V1/"
            "{train,test,list_*.txt} or MSMT17_V2/{mask_train_v2,mask_test_v2,list_*.txt}, "
            f"or the root to be one of those folders, for {self.name})"
        )

    def _read(self, list_file: Path, image_dir: Path, *, offset: int) -> list[ImageRecord]:
        lines = read_list(list_file, expected=f"lines like '{_LINE_EXAMPLE}'", dataset=self.name)
        records = [
            self._parse(list_file, number, text, image_dir, offset) for number, text in lines
        ]
        require_records(records, list_file, "listed")
        check_records(records, listed_in=list_file)
        return records

    def _parse(
        self, list_file: Path, number: int, text: str, image_dir: Path, offset: int
    ) -> ImageRecord:
        fields = text.split()
        name_fields = Path(fields[0]).name.split("_") if fields else []
        if len(fields) != 2 or len(name_fields) < 3:
            raise DatasetError(
                f"line {number} of {list_file} reads {text!r} (expected '{_LINE_EXAMPLE}')"
            )
        try:
            pid, camid = int(fields[1]), int(name_fields[2]) - 1
        except ValueError:
            raise DatasetError(
                f"line {number} of {list_file} reads {text!r} (expected '{_LINE_EXAMPLE}')"
            ) from None
        return ImageRecord(
            path=image_dir / fields[0], pid=pid + offset, camid=camid, dataset=self.name
        )
