"""CUHK03 under the new (767 / 700 ids) protocol of Zhong et al. (CVPR 2017), labeled or detected.

Two layouts are read, tried in this order:

1. CUHK03-NP, Market-style: `cuhk03-np/{labeled,detected}/{bounding_box_train,query,
   bounding_box_test}/*.png`, named `<pid:04d>_c<cam>_<n>.png` (e.g. `0001_c1_1.png`, camera 1 or
   2 of the pair that saw the person).
2. The reference's layout: `cuhk03/images_{labeled,detected}/*.png` (extracted from
   `cuhk-03.mat`, named `<pair>_<pid:03d>_<cam>_<n:02d>.png`, e.g. `1_001_1_01.png`) and the
   protocol file `cuhk03/cuhk03_new_protocol_config_{labeled,detected}.mat` (MATLAB v5, fields
   `filelist`, `labels`, `train_idx`, `query_idx`, `gallery_idx`, indices 1-based). The camera is
   the third `_` field of the file name minus 1, as in the reference; `cuhk-03.mat` itself is not
   read (extract the images once with the reference tool).

Both give 7,368 / 1,400 / 5,328 (labeled) or 7,365 / 1,400 / 5,332 (detected) images.
"""

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

from reid_platform.data.datasets.market1501 import MARKET_SPLIT_FOLDERS, load_market_style
from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import (
    check_records,
    require_dir,
    require_records,
    require_root,
)
from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.errors import DatasetError, ReidError

CUHK03Variant = Literal["labeled", "detected"]
_MAT_FIELDS = ("filelist", "labels", "train_idx", "query_idx", "gallery_idx")


@DATASETS.register("cuhk03")
class CUHK03Dataset:
    """CUHK03 new protocol; `variant` picks hand-drawn (`labeled`) or DPM (`detected`) boxes.

    The root may hold `cuhk03-np/` or `cuhk03/`, or be one of those folders itself.
    """

    name: ClassVar[str] = "cuhk03"

    def __init__(self, *, root: Path, variant: CUHK03Variant = "labeled") -> None:
        self.root = Path(root)
        self.variant = variant

    @property
    def _np_expected(self) -> str:
        return f"cuhk03-np/{self.variant}/{{{','.join(MARKET_SPLIT_FOLDERS)}}}"

    @property
    def _mat_name(self) -> str:
        return f"cuhk03_new_protocol_config_{self.variant}.mat"

    @property
    def _mat_expected(self) -> str:
        return f"cuhk03/{{images_{self.variant}/,{self._mat_name}}}"

    def load(self) -> DatasetSplits:
        """Read whichever of the two layouts is present (CUHK03-NP first)."""
        expected = f"{self._np_expected} or {self._mat_expected}"
        require_root(self.root, expected=f"{expected} inside it", dataset=self.name)
        for base in (self.root / "cuhk03-np" / self.variant, self.root / self.variant):
            if base.is_dir():
                return self._load_np(base)
        for base in (self.root / "cuhk03", self.root):
            if (base / self._mat_name).is_file():
                return self._load_mat(base)
        raise DatasetError(
            f"dataset folder {self.root} holds neither {self._np_expected} nor "
            f"{self._mat_expected} (expected one of them for {self.name})"
        )

    def _load_np(self, base: Path) -> DatasetSplits:
        for folder in MARKET_SPLIT_FOLDERS:
            require_dir(base / folder, expected=self._np_expected, dataset=self.name)
        splits = load_market_style(base, dataset=self.name, example="0001_c1_1.png")
        return dataclasses.replace(
            splits, notes=(*splits.notes, f"CUHK03-NP layout, {self.variant} boxes")
        )

    def _load_mat(self, base: Path) -> DatasetSplits:
        image_dir = require_dir(
            base / f"images_{self.variant}", expected=self._mat_expected, dataset=self.name
        )
        mat_file = base / self._mat_name
        fields = _read_protocol(mat_file)
        names = [_mat_text(item) for item in fields["filelist"].ravel()]
        labels = [int(label) for label in fields["labels"].ravel()]
        if len(names) != len(labels):
            raise DatasetError(
                f"protocol file {mat_file} has {len(names)} filelist entries but "
                f"{len(labels)} labels (expected one label per file)"
            )
        split_records = []
        for split, field in (
            ("train", "train_idx"),
            ("query", "query_idx"),
            ("gallery", "gallery_idx"),
        ):
            records = []
            for index in (int(i) for i in fields[field].ravel()):
                if not 1 <= index <= len(names):
                    raise DatasetError(
                        f"protocol file {mat_file} has {field} entry {index} (expected 1-based "
                        f"indices from 1 to {len(names)})"
                    )
                records.append(self._record(image_dir / names[index - 1], labels[index - 1]))
            require_records(records, mat_file, split)
            check_records(records, listed_in=mat_file)
            split_records.append(records)
        train, query, gallery = split_records
        return DatasetSplits(
            name=self.name,
            train=make_split("train", train),
            query=make_split("query", query),
            gallery=make_split("gallery", gallery),
            notes=(f"read {base}", f"new-protocol .mat split, {self.variant} boxes"),
        )

    def _record(self, path: Path, pid: int) -> ImageRecord:
        fields = path.name.split("_")
        try:
            camid = int(fields[2]) - 1
        except (IndexError, ValueError):
            raise DatasetError(
                f"image file {path} does not match the expected name pattern "
                f"'<pair>_<pid>_<cam>_<n>.png' (e.g. 1_001_1_01.png)"
            ) from None
        return ImageRecord(path=path, pid=pid, camid=camid, dataset=self.name)


def _read_protocol(mat_file: Path) -> dict[str, Any]:
    """The protocol fields of a MATLAB v5 file, read with scipy (an optional dependency)."""
    try:
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError
    except ImportError:
        raise ReidError(
            f"reading {mat_file} needs the optional dependency scipy (pip install scipy)"
        ) from None
    try:
        content: dict[str, Any] = loadmat(str(mat_file))
    except (MatReadError, OSError, ValueError, TypeError, NotImplementedError) as error:
        raise DatasetError(
            f"protocol file {mat_file} is not a readable MATLAB v5 file ({error})"
        ) from None
    missing = [field for field in _MAT_FIELDS if field not in content]
    if missing:
        raise DatasetError(
            f"protocol file {mat_file} lacks the field(s) {', '.join(missing)} "
            f"(expected {', '.join(_MAT_FIELDS)})"
        )
    return content


def _mat_text(item: Any) -> str:
    """A file name from a MATLAB cell entry (a 1-element char array) or a char-matrix row."""
    while hasattr(item, "ravel") and not isinstance(item, str):
        flat = item.ravel()
        if flat.size == 0:
            return ""
        item = flat[0] if flat.size == 1 or flat.dtype.kind != "U" else "".join(flat)
    return str(item).strip()
