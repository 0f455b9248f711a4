"""A CSV manifest: your own data without renaming files.

The file (default `<root>/manifest.csv`) starts with a header naming the columns `path,pid,camid`
and optionally `split` (in any order); each row is one image. `path` is relative to the root
(absolute paths are used as they are), `pid` and `camid` are integers and `split` is `train`,
`query` or `gallery`. Without a `split` column every row is a training image and the query and
gallery are empty (the dataset can then only be trained on).
"""

import csv
import logging
from pathlib import Path
from typing import ClassVar

from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import check_records, require_root
from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.errors import DatasetError

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "pid", "camid")
SPLIT_COLUMN = "split"
SPLITS = ("train", "query", "gallery")


@DATASETS.register("manifest")
class ManifestDataset:
    """Images listed in a CSV file (`file`, relative to `root` unless absolute)."""

    name: ClassVar[str] = "manifest"

    def __init__(self, *, root: Path, file: str = "manifest.csv") -> None:
        self.root = Path(root)
        self.file = file

    def load(self) -> DatasetSplits:
        """Read every row; a bad row is a `DatasetError` naming the file and line number."""
        require_root(self.root, expected=f"a CSV file {self.file} inside it", dataset=self.name)
        manifest = self.root / self.file
        if not manifest.is_file():
            raise DatasetError(
                f"manifest file {manifest} does not exist (expected a CSV with the header "
                f"'path,pid,camid[,split]' for {self.name})"
            )
        by_split, has_split = self._read(manifest)
        notes = [f"read {manifest}"]
        if not has_split:
            notes.append(
                "no split column: every image is a training image, query and gallery empty"
            )
        elif bool(by_split["query"]) != bool(by_split["gallery"]):
            present, absent = ("query", "gallery") if by_split["query"] else ("gallery", "query")
            raise DatasetError(
                f"manifest file {manifest} has {present} rows but no {absent} rows (expected both "
                "or neither)"
            )
        if not any(by_split.values()):
            raise DatasetError(f"manifest file {manifest} lists no images")
        if not by_split["train"]:
            notes.append("no training rows: the dataset can only be evaluated on")
        for records in by_split.values():
            check_records(records, listed_in=manifest)
        logger.info("manifest: %s", {split: len(records) for split, records in by_split.items()})
        return DatasetSplits(
            name=self.name,
            train=make_split("train", by_split["train"]),
            query=make_split("query", by_split["query"]),
            gallery=make_split("gallery", by_split["gallery"]),
            notes=tuple(notes),
        )

    def _read(self, manifest: Path) -> tuple[dict[str, list[ImageRecord]], bool]:
        by_split: dict[str, list[ImageRecord]] = {split: [] for split in SPLITS}
        with manifest.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [column.strip() for column in next(reader, [])]
            columns = self._check_header(manifest, header)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                split, record = self._parse(manifest, reader.line_num, row, columns)
                by_split[split].append(record)
        return by_split, SPLIT_COLUMN in columns

    def _check_header(self, manifest: Path, header: list[str]) -> dict[str, int]:
        allowed = (*REQUIRED_COLUMNS, SPLIT_COLUMN)
        unknown = [column for column in header if column not in allowed]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if unknown or missing or len(set(header)) != len(header):
            raise DatasetError(
                f"manifest file {manifest} has the header {','.join(header)!r} (expected the "
                "columns path,pid,camid and optionally split, each once)"
            )
        return {column: position for position, column in enumerate(header)}

    def _parse(
        self, manifest: Path, line: int, row: list[str], columns: dict[str, int]
    ) -> tuple[str, ImageRecord]:
        cells = [cell.strip() for cell in row]
        example = "'images/0001_a.jpg,1,0,train'" if SPLIT_COLUMN in columns else "'a.jpg,1,0'"
        problem = f"line {line} of {manifest} reads {','.join(row)!r}"
        if len(cells) != len(columns):
            raise DatasetError(f"{problem} (expected {len(columns)} columns, e.g. {example})")
        path_text = cells[columns["path"]]
        split = cells[columns[SPLIT_COLUMN]] if SPLIT_COLUMN in columns else "train"
        try:
            pid, camid = int(cells[columns["pid"]]), int(cells[columns["camid"]])
        except ValueError:
            raise DatasetError(
                f"{problem} (expected integer pid and camid, e.g. {example})"
            ) from None
        if not path_text or split not in SPLITS:
            raise DatasetError(
                f"{problem} (expected a path and a split of train, query or gallery, "
                f"e.g. {example})"
            )
        record = ImageRecord(path=self.root / path_text, pid=pid, camid=camid, dataset=self.name)
        return split, record
