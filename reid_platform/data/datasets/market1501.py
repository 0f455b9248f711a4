"""Market-1501, and the Market-style folder scan that DukeMTMC-reID and CUHK03-NP reuse.

Layout: `Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/*.jpg`, or those three
folders directly under the root (as the synthetic benchmark writes them). File names are
`<pid>_c<cam>s<seq>_<frame>_<box>.jpg`, e.g. `0002_c1s1_000451_03.jpg`; pid -1 marks junk boxes
(dropped) and pid 0 distractors (kept in the gallery, as the benchmark protocol does).
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import (
    check_records,
    find_base,
    list_images,
    parse_name,
    plural,
    require_records,
)
from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.errors import DatasetError

logger = logging.getLogger(__name__)

MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
"""`<pid>_c<cam>` at the start of a file name; pid may be -1 (junk). Camera numbers start at 1.

The reference matches one camera digit (`c(\\d)`); `\\d+` reads the same real names and also
camera numbers above 9 (larger synthetic benchmarks).
"""

MARKET_SPLIT_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")

JUNK_PID = -1
DISTRACTOR_PID = 0


@dataclass(frozen=True, slots=True)
class MarketStyleScan:
    """The records of one Market-style folder and how many junk (pid -1) images were dropped."""

    records: tuple[ImageRecord, ...]
    junk: int


def scan_market_folder(folder: Path, *, dataset: str, example: str, split: str) -> MarketStyleScan:
    """Records of the images in `folder` named `<pid>_c<cam>...`; cameras 1..C become 0..C-1.

    Junk images (pid -1) are dropped and counted. Every kept image's header is checked. A folder
    without images, a name that does not parse or a camera number 0 is a `DatasetError`.
    """
    records: list[ImageRecord] = []
    junk = 0
    for path in list_images(folder):
        pid, cam = parse_name(path, MARKET_NAME, example)
        if pid == JUNK_PID:
            junk += 1
            continue
        if cam < 1:
            raise DatasetError(
                f"image file {path} has camera number {cam} (expected cameras numbered from 1, "
                f"e.g. {example})"
            )
        records.append(ImageRecord(path=path, pid=pid, camid=cam - 1, dataset=dataset))
    require_records(records, folder, split)
    check_records(records)
    return MarketStyleScan(records=tuple(records), junk=junk)


def load_market_style(base: Path, *, dataset: str, example: str) -> DatasetSplits:
    """Train / query / gallery from `base/{bounding_box_train,query,bounding_box_test}`.

    Notes count dropped junk images and the distractors (pid 0) kept in the gallery.
    """
    train_dir, query_dir, gallery_dir = (base / name for name in MARKET_SPLIT_FOLDERS)
    train = scan_market_folder(train_dir, dataset=dataset, example=example, split="training")
    query = scan_market_folder(query_dir, dataset=dataset, example=example, split="query")
    gallery = scan_market_folder(gallery_dir, dataset=dataset, example=example, split="gallery")
    notes = [f"read {base}"]
    junk = train.junk + query.junk + gallery.junk
    if junk:
        notes.append(f"dropped {plural(junk, 'junk image')} (pid {JUNK_PID})")
    distractors = sum(1 for record in gallery.records if record.pid == DISTRACTOR_PID)
    if distractors:
        notes.append(
            f"kept {plural(distractors, 'distractor image')} (pid {DISTRACTOR_PID}) in the gallery"
        )
    splits = DatasetSplits(
        name=dataset,
        train=make_split("train", train.records),
        query=make_split("query", query.records),
        gallery=make_split("gallery", gallery.records),
        notes=tuple(notes),
    )
    logger.info(
        "%s: %d train, %d query, %d gallery images",
        dataset,
        len(splits.train),
        len(splits.query),
        len(splits.gallery),
    )
    return splits


@DATASETS.register("market1501")
class Market1501Dataset:
    """Market-1501 (Zheng et al., ICCV 2015): 751 training ids, 750 test ids, 6 cameras.

    Reads `root/Market-1501-v15.09.15/...` when that folder exists, else the split folders
    directly under `root`. Raw pids are kept (train is relabelled later in the pipeline).
    """

    name: ClassVar[str] = "market1501"
    folder_names: ClassVar[tuple[str, ...]] = ("Market-1501-v15.09.15",)
    example: ClassVar[str] = "0002_c1s1_000451_03.jpg"

    def __init__(self, *, root: Path) -> None:
        self.root = Path(root)

    def load(self) -> DatasetSplits:
        """Scan the three split folders; junk dropped, distractors kept (see module doc)."""
        base = find_base(
            self.root,
            candidates=self.folder_names,
            required=MARKET_SPLIT_FOLDERS,
            dataset=self.name,
        )
        return load_market_style(base, dataset=self.name, example=self.example)
