"""The dataset registry and `build_dataset`: config name and option block → the right class."""

from pathlib import Path
from typing import get_args

import pytest

from reid_platform.config.data import (
    DatasetConfig,
    DatasetName,
    FolderOptions,
    SyntheticOptions,
    VehicleIDOptions,
)
from reid_platform.data.datasets import DATASETS, VehicleIDDataset, build_dataset
from reid_platform.data.datasets.build import dataset_options
from reid_platform.errors import ConfigError, DatasetError

LAYOUTS = (
    "market1501",
    "dukemtmc",
    "msmt17",
    "cuhk03",
    "veri",
    "vehicleid",
    "veriwild",
    "manifest",
    "folder",
)


def test_every_layout_is_registered() -> None:
    assert set(LAYOUTS) <= set(DATASETS.names())


def test_registry_matches_the_config_names() -> None:
    assert set(DATASETS.names()) == set(get_args(DatasetName))


def test_build_passes_synthetic_options(tmp_path: Path) -> None:
    options = SyntheticOptions(ids=4, cams=2, images_per_id=2, height=16, width=8, seed=1)
    config = DatasetConfig(name="synthetic", root=str(tmp_path / "synth"), synthetic=options)
    splits = build_dataset(config)
    assert splits.name == "synthetic"
    assert len(splits.train) + len(splits.query) + len(splits.gallery) > 0


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_reports_a_missing_root(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(DatasetError) as caught:
        build_dataset(DatasetConfig(name=name, root=str(missing)))
    assert str(missing) in str(caught.value)
    assert name in str(caught.value) or "manifest" in str(caught.value)


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ConfigError, match="market1501"):
        DATASETS.get("market1502")


def test_options_follow_the_active_block() -> None:
    config = DatasetConfig(
        name="vehicleid",
        root="/data",
        vehicleid=VehicleIDOptions(test_size="large", gallery_seed=5),
        folder=FolderOptions(camera_pattern="c(\\d)"),
    )
    assert dataset_options(config) == {"test_size": "large", "gallery_seed": 5}
    assert dataset_options(DatasetConfig(name="veri", root="/data")) == {}
    synthetic = DatasetConfig(name="synthetic", root="/d", synthetic=SyntheticOptions(ids=8))
    assert dataset_options(synthetic) == {
        "ids": 8,
        "cams": 4,
        "images_per_id": 12,
        "height": 128,
        "width": 64,
        "seed": 0,
    }


def test_build_matches_the_class(tmp_path: Path, write_images, write_text) -> None:
    base = tmp_path / "vehicleid"
    write_text(base / "train_test_split" / "train_list.txt", ["0000001 1", "0000002 1"])
    test = [f"{10 + i:07d} {i // 3}" for i in range(9)]
    write_text(base / "train_test_split" / "test_list_1600.txt", test)
    write_images(
        base / "image", ["0000001.jpg", "0000002.jpg"] + [f"{10 + i:07d}.jpg" for i in range(9)]
    )
    config = DatasetConfig(
        name="vehicleid",
        root=str(tmp_path),
        vehicleid=VehicleIDOptions(test_size="medium", gallery_seed=3),
    )

    built = build_dataset(config)
    direct = VehicleIDDataset(root=tmp_path, test_size="medium", gallery_seed=3).load()

    assert built == direct
    assert built.gallery.summary() == {"ids": 3, "cams": 3, "images": 3}
