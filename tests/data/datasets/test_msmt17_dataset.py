"""MSMT17 V1 / V2: list files, camera from the file name, test-id offset, list_val handling."""

from pathlib import Path

import pytest

from reid_platform.data.datasets import MSMT17Dataset
from reid_platform.errors import DatasetError

TRAIN_LIST = [
    "0000/0000_000_01_0303morning_0015_0.jpg 0",
    "0000/0000_001_03_0303morning_0020_1.jpg 0",
    "0001/0001_000_15_0303noon_0100_0.jpg 1",
]
VAL_LIST = [
    "0000/0000_002_02_0303morning_0030_0.jpg 0",
    "0001/0001_001_15_0303noon_0110_2.jpg 1",
]
QUERY_LIST = [
    "0000/0000_000_04_0113morning_0001_0.jpg 0",
    "0001/0001_000_05_0113morning_0002_0.jpg 1",
]
GALLERY_LIST = [
    "0000/0000_001_06_0113noon_0003_0.jpg 0",
    "0000/0000_002_04_0113noon_0004_1.jpg 0",
    "0001/0001_001_07_0113noon_0005_0.jpg 1",
]


def make_msmt(root: Path, version: str, write_images, write_text) -> Path:
    folder, train_dir, test_dir = {
        "v1": ("MSMT17_V1", "train", "test"),
        "v2": ("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
    }[version]
    base = root / folder
    for name, lines, images in (
        ("list_train.txt", TRAIN_LIST, train_dir),
        ("list_val.txt", VAL_LIST, train_dir),
        ("list_query.txt", QUERY_LIST, test_dir),
        ("list_gallery.txt", GALLERY_LIST, test_dir),
    ):
        write_text(base / name, lines)
        write_images(base / images, [line.split()[0] for line in lines])
    return base


def test_v1_counts_offset_and_cameras(tmp_path: Path, write_images, write_text) -> None:
    make_msmt(tmp_path, "v1", write_images, write_text)
    dataset = MSMT17Dataset(root=tmp_path)

    splits = dataset.load()

    # train = list_train (3) + list_val (2); cameras 01, 03, 15, 02 -> 0, 2, 14, 1
    assert splits.train.summary() == {"ids": 2, "cams": 4, "images": 5}
    assert splits.train.camids == {0, 1, 2, 14}
    # 2 training ids, so test pids 0, 1 become 2, 3
    assert splits.query.pids == {2, 3}
    assert splits.gallery.pids == {2, 3}
    assert splits.query.camids == {3, 4}
    assert splits.gallery.summary() == {"ids": 2, "cams": 3, "images": 3}
    assert dataset.official_val_pids == {0, 1}
    assert {path.name for path in dataset.official_val_paths} == {
        "0000_002_02_0303morning_0030_0.jpg",
        "0001_001_15_0303noon_0110_2.jpg",
    }
    assert all("MSMT17_V1" in str(record.path) for record in splits.train.records)
    assert any("offset by 2" in note for note in splits.notes)


def test_without_val(tmp_path: Path, write_images, write_text) -> None:
    make_msmt(tmp_path, "v1", write_images, write_text)
    dataset = MSMT17Dataset(root=tmp_path, include_val=False)
    splits = dataset.load()
    assert len(splits.train) == 3
    assert dataset.official_val_pids == {0, 1}


def test_auto_prefers_v2_and_explicit_version_wins(
    tmp_path: Path, write_images, write_text
) -> None:
    make_msmt(tmp_path, "v1", write_images, write_text)
    make_msmt(tmp_path, "v2", write_images, write_text)

    auto = MSMT17Dataset(root=tmp_path, version="auto").load()
    v1 = MSMT17Dataset(root=tmp_path, version="v1").load()

    assert all("mask_train_v2" in str(record.path) for record in auto.train.records)
    assert all("mask_test_v2" in str(record.path) for record in auto.gallery.records)
    assert all("MSMT17_V1" in str(record.path) for record in v1.query.records)


def test_root_may_be_the_version_folder(tmp_path: Path, write_images, write_text) -> None:
    base = make_msmt(tmp_path, "v2", write_images, write_text)
    assert len(MSMT17Dataset(root=base).load().gallery) == 3


def test_missing_version_folder(tmp_path: Path, write_images, write_text) -> None:
    make_msmt(tmp_path, "v1", write_images, write_text)
    with pytest.raises(DatasetError, match="MSMT17_V2") as caught:
        MSMT17Dataset(root=tmp_path, version="v2").load()
    assert str(tmp_path) in str(caught.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        MSMT17Dataset(root=tmp_path / "msmt").load()


def test_bad_list_line_names_file_and_line(tmp_path: Path, write_images, write_text) -> None:
    base = make_msmt(tmp_path, "v1", write_images, write_text)
    write_text(base / "list_query.txt", [QUERY_LIST[0], "0001/0001_000_05_x.jpg"])
    with pytest.raises(DatasetError, match="line 2 of") as caught:
        MSMT17Dataset(root=tmp_path).load()
    assert str(base / "list_query.txt") in str(caught.value)


def test_listed_image_missing(tmp_path: Path, write_images, write_text) -> None:
    base = make_msmt(tmp_path, "v1", write_images, write_text)
    missing = base / "test" / "0001" / "0001_001_07_0113noon_0005_0.jpg"
    missing.unlink()
    with pytest.raises(DatasetError, match="does not exist") as caught:
        MSMT17Dataset(root=tmp_path).load()
    assert str(missing) in str(caught.value)
    assert "list_gallery.txt" in str(caught.value)


def test_corrupt_listed_image(tmp_path: Path, write_images, write_text) -> None:
    base = make_msmt(tmp_path, "v1", write_images, write_text)
    bad = base / "train" / "0000" / "0000_001_03_0303morning_0020_1.jpg"
    bad.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable image") as caught:
        MSMT17Dataset(root=tmp_path).load()
    assert str(bad) in str(caught.value)


def test_empty_list_is_named(tmp_path: Path, write_images, write_text) -> None:
    base = make_msmt(tmp_path, "v1", write_images, write_text)
    write_text(base / "list_val.txt", [])
    with pytest.raises(DatasetError, match="holds no listed images") as caught:
        MSMT17Dataset(root=tmp_path).load()
    assert str(base / "list_val.txt") in str(caught.value)
