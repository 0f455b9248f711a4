"""Dataset config → `DatasetSplits`: the only place a dataset config meets a dataset class."""

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from reid_platform.config.data import DatasetConfig
from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.records import DatasetSplits

OptionsOf = Callable[[DatasetConfig], dict[str, object]]


def _msmt17(config: DatasetConfig) -> dict[str, object]:
    return {"version": config.msmt17.version}


def _cuhk03(config: DatasetConfig) -> dict[str, object]:
    return {"variant": config.cuhk03.variant}


def _vehicleid(config: DatasetConfig) -> dict[str, object]:
    options = config.vehicleid
    return {"test_size": options.test_size, "gallery_seed": options.gallery_seed}


def _veriwild(config: DatasetConfig) -> dict[str, object]:
    return {"test_size": config.veriwild.test_size}


def _manifest(config: DatasetConfig) -> dict[str, object]:
    return {"file": config.manifest.file}


def _folder(config: DatasetConfig) -> dict[str, object]:
    return {"camera_pattern": config.folder.camera_pattern}


def _synthetic(config: DatasetConfig) -> dict[str, object]:
    options = config.synthetic
    return {
        "ids": options.ids,
        "cams": options.cams,
        "images_per_id": options.images_per_id,
        "height": options.height,
        "width": options.width,
        "seed": options.seed,
    }


DATASET_OPTIONS: Mapping[str, OptionsOf] = MappingProxyType(
    {
        "msmt17": _msmt17,
        "cuhk03": _cuhk03,
        "vehicleid": _vehicleid,
        "veriwild": _veriwild,
        "manifest": _manifest,
        "folder": _folder,
        "synthetic": _synthetic,
    }
)
"""Registry name → the keyword arguments its option block gives the dataset class (beyond
`root`); layouts without options (market1501, dukemtmc, veri) are absent."""


def dataset_options(config: DatasetConfig) -> dict[str, object]:
    """The keyword arguments (besides `root`) that `config`'s active option block gives."""
    options_of = DATASET_OPTIONS.get(config.name)
    return options_of(config) if options_of is not None else {}


def build_dataset(config: DatasetConfig) -> DatasetSplits:
    """Scan the dataset `config` names at `config.root` (`~` expanded)."""
    dataset_class = DATASETS.get(config.name)
    dataset = dataset_class(root=Path(config.root).expanduser(), **dataset_options(config))
    return dataset.load()
