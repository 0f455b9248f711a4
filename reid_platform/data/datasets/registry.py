"""The dataset registry: one entry per on-disk layout, looked up by the config's `data.*.name`."""

from pathlib import Path
from typing import Protocol

from reid_platform.config.registry import Registry
from reid_platform.data.records import DatasetSplits


class ReidDataset(Protocol):
    """One on-disk layout.

    Constructed with keyword-only arguments: `root` (the folder the user points at) plus the
    layout's own typed options, each with a default. Construction touches no files; `load` scans
    the folder and returns raw benchmark ids (training ids are relabelled later in the pipeline).
    """

    def __init__(self, *, root: Path) -> None: ...

    def load(self) -> DatasetSplits:
        """Scan `root` and return the train / query / gallery records with notes on the scan."""
        ...


DATASETS: Registry[type[ReidDataset]] = Registry("dataset")
"""Registry names: market1501, dukemtmc, msmt17, cuhk03, veri, vehicleid, veriwild, manifest,
folder, synthetic."""
