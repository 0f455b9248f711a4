"""One folder per identity: `root/{train,query,gallery}/<identity>/<image>`.

Identity folders named by integers give those pids; otherwise all identity names (of the three
splits together) are sorted and numbered from 0, so one name has one pid in every split. Camera
ids come from `camera_pattern` (a regular expression whose first group, searched in the file
name, is the camera number) or, without one, are 0 for train and query and 1 for the gallery, so
that no gallery image is removed as a same-camera match. `query/` and `gallery/` may both be
absent (a training-only dataset), not just one.
"""

import logging
import os
import re
from pathlib import Path
from typing import ClassVar

from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import (
    check_records,
    list_images,
    plural,
    require_dir,
    require_records,
    require_root,
)
from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

SPLITS = ("train", "query", "gallery")
_LAYOUT = "{train,query,gallery}/<identity>/<image>"
_INTEGER = re.compile(r"^-?\d+$")
_DEFAULT_CAMERAS = {"train": 0, "query": 0, "gallery": 1}


@DATASETS.register("folder")
class FolderDataset:
    """Images sorted into identity folders; see the module doc for ids and camera ids."""

    name: ClassVar[str] = "folder"

    def __init__(self, *, root: Path, camera_pattern: str | None = None) -> None:
        self.root = Path(root)
        self.camera_pattern = camera_pattern

    def load(self) -> DatasetSplits:
        """Scan the split folders; identities map to the same pid in every split."""
        pattern = self._compile_pattern()
        require_root(self.root, expected=f"{_LAYOUT} inside it", dataset=self.name)
        require_dir(self.root / "train", expected=_LAYOUT, dataset=self.name)
        splits = self._present_splits()
        identities = {split: self._identity_dirs(self.root / split) for split in splits}
        pids, pid_note = _assign_pids({d.name for dirs in identities.values() for d in dirs})
        records: dict[str, list[ImageRecord]] = {split: [] for split in SPLITS}
        for split in splits:
            for identity in identities[split]:
                for path in list_images(identity):
                    camid = (
                        _camera(path, pattern) if pattern is not None else _DEFAULT_CAMERAS[split]
                    )
                    records[split].append(
                        ImageRecord(
                            path=path, pid=pids[identity.name], camid=camid, dataset=self.name
                        )
                    )
            require_records(records[split], self.root / split, split)
            check_records(records[split])
        notes = [f"read {self.root}"]
        if pid_note:
            notes.append(pid_note)
        if pattern is None:
            notes.append(
                "no camera_pattern: camera id 0 for train and query images and 1 for gallery "
                "images, so no gallery image is removed as a same-camera match"
            )
        if splits == ("train",):
            notes.append("no query/ and gallery/ folders: a training-only dataset")
        logger.info("folder: %s", {split: len(found) for split, found in records.items()})
        return DatasetSplits(
            name=self.name,
            train=make_split("train", records["train"]),
            query=make_split("query", records["query"]),
            gallery=make_split("gallery", records["gallery"]),
            notes=tuple(notes),
        )

    def _compile_pattern(self) -> re.Pattern[str] | None:
        if self.camera_pattern is None:
            return None
        try:
            pattern = re.compile(self.camera_pattern)
        except re.error as error:
            raise ConfigError(
                f"folder.camera_pattern {self.camera_pattern!r} is not a valid regular "
                f"expression ({error})"
            ) from None
        if pattern.groups < 1:
            raise ConfigError(
                f"folder.camera_pattern {self.camera_pattern!r} has no group (expected one "
                r"capturing the camera number, e.g. '_c(\d+)')"
            )
        return pattern

    def _present_splits(self) -> tuple[str, ...]:
        query, gallery = (self.root / "query").is_dir(), (self.root / "gallery").is_dir()
        if query != gallery:
            missing = self.root / ("gallery" if query else "query")
            raise DatasetError(
                f"dataset folder {missing} does not exist (expected both query/ and gallery/ "
                f"or neither under {self.root} for {self.name})"
            )
        return SPLITS if query else ("train",)

    def _identity_dirs(self, split_dir: Path) -> list[Path]:
        """The identity folders of one split, sorted; loose images there are an error."""
        loose = list_images(split_dir)
        if loose:
            raise DatasetError(
                f"image file {loose[0]} lies directly in {split_dir} (expected "
                f"{split_dir.name}/<identity>/<image>)"
            )
        with os.scandir(split_dir) as entries:
            names = sorted(entry.name for entry in entries if entry.is_dir())
        return [split_dir / name for name in names]


def _camera(path: Path, pattern: re.Pattern[str]) -> int:
    """The camera number that `pattern`'s first group finds in the file name of `path`."""
    match = pattern.search(path.name)
    found = match.group(1) if match is not None else None
    if found is None or not found.isdigit():
        raise DatasetError(
            f"image file {path} does not match camera_pattern {pattern.pattern!r} (expected its "
            "first group to find the camera number in the file name)"
        )
    return int(found)


def _assign_pids(names: set[str]) -> tuple[dict[str, int], str | None]:
    """Identity folder name → pid, and a note when names had to be numbered.

    Integer names keep their value unless two names share one (`1` and `001`).
    """
    if all(_INTEGER.match(name) for name in names) and len({int(n) for n in names}) == len(names):
        return {name: int(name) for name in names}, None
    ordered = sorted(names)
    note = (
        f"identity folders are not all integers: numbered {plural(len(ordered), 'name')} "
        f"0..{len(ordered) - 1} in sorted order"
    )
    return {name: pid for pid, name in enumerate(ordered)}, note
