"""One dataset class per on-disk layout, registered in `DATASETS` under its config name.

Importing this package registers every layout; `build_dataset` maps a dataset config to its class.
"""

from reid_platform.data.datasets import (
    cuhk03,
    dukemtmc,
    folder,
    manifest,
    market1501,
    msmt17,
    synthetic,  # written with the synthetic generator; uses Market1501Dataset
    vehicleid,
    veri,
    veriwild,
)
from reid_platform.data.datasets.build import build_dataset
from reid_platform.data.datasets.cuhk03 import CUHK03Dataset
from reid_platform.data.datasets.dukemtmc import DukeMTMCDataset
from reid_platform.data.datasets.folder import FolderDataset
from reid_platform.data.datasets.manifest import ManifestDataset
from reid_platform.data.datasets.market1501 import Market1501Dataset
from reid_platform.data.datasets.msmt17 import MSMT17Dataset
from reid_platform.data.datasets.registry import DATASETS, ReidDataset
from reid_platform.data.datasets.vehicleid import VehicleIDDataset
from reid_platform.data.datasets.veri import VeRiDataset
from reid_platform.data.datasets.veriwild import VeRiWildDataset

__all__ = [
    "DATASETS",
    "CUHK03Dataset",
    "DukeMTMCDataset",
    "FolderDataset",
    "MSMT17Dataset",
    "ManifestDataset",
    "Market1501Dataset",
    "ReidDataset",
    "VeRiDataset",
    "VeRiWildDataset",
    "VehicleIDDataset",
    "build_dataset",
    "cuhk03",
    "dukemtmc",
    "folder",
    "manifest",
    "market1501",
    "msmt17",
    "synthetic",
    "vehicleid",
    "veri",
    "veriwild",
]
