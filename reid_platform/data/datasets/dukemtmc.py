"""DukeMTMC-reID: `DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/*.jpg`.

Named like Market-1501 (`0001_c2_f0046182.jpg`: pid, camera 1-8, frame); 702 training ids,
1,110 gallery ids (408 of them distractors that appear only in the gallery), 8 cameras.
"""

from typing import ClassVar

from reid_platform.data.datasets.market1501 import Market1501Dataset
from reid_platform.data.datasets.registry import DATASETS


@DATASETS.register("dukemtmc")
class DukeMTMCDataset(Market1501Dataset):
    """DukeMTMC-reID (Zheng et al., ICCV 2017), read from `root/DukeMTMC-reID` or `root`.

    The Market-1501 layout and rules under another folder name; cameras 1-8 become 0-7 and raw
    pids are kept.
    """

    name: ClassVar[str] = "dukemtmc"
    folder_names: ClassVar[tuple[str, ...]] = ("DukeMTMC-reID",)
    example: ClassVar[str] = "0001_c2_f0046182.jpg"
