"""DukeMTMC-reID: `DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/*.jpg`.

Named like Market-1501 (`0001_c2_f0046182.jpg`: pid, camera 1-8, frame); 702 training ids,
1,110 gallery ids (408 of them distractors that appear only in the gallery), 8 cameras.
"""

from pathlib import Path
from typing import ClassVar

from reid_platform.data.datasets.market1501 import MARKET_SPLIT_FOLDERS, load_market_style
from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.scan import find_base
from reid_platform.data.records import DatasetSplits


@DATASETS.register("dukemtmc")
class DukeMTMCDataset:
    """DukeMTMC-reID (Zheng et al., ICCV 2017), read from `root/DukeMTMC-reID` or `root`.

    Cameras 1-8 become 0-7; raw pids are kept.
    """

    name: ClassVar[str] = "dukemtmc"
    folder_names: ClassVar[tuple[str, ...]] = ("DukeMTMC-reID",)
    example: ClassVar[str] = "0001_c2_f0046182.jpg"

    def __init__(self, *, root: Path) -> None:
        self.root = Path(root)

    def load(self) -> DatasetSplits:
        """Scan the three Market-style split folders."""
        base = find_base(
            self.root,
            candidates=self.folder_names,
            required=MARKET_SPLIT_FOLDERS,
            dataset=self.name,
        )
        return load_market_style(base, dataset=self.name, example=self.example)
