"""Market-1501 and DukeMTMC-reID: Market-style trees, junk and distractor rules, scan errors."""

import re
from pathlib import Path

import pytest

from reid_platform.data.datasets import DukeMTMCDataset, Market1501Dataset
from reid_platform.errors import DatasetError

TRAIN = [
    "0002_c1s1_000451_03.jpg",
    "0002_c2s1_000301_01.jpg",
    "0007_c3s1_000101_01.jpg",
    "0007_c6s2_000201_02.jpg",
    "0010_c4s1_000111_01.jpg",
]
QUERY = ["0011_c1s1_000001_00.jpg", "0012_c2s1_000002_00.jpg"]
GALLERY = [
    "0011_c2s1_000010_01.jpg",
    "0011_c3s1_000011_01.jpg",
    "0012_c1s1_000012_01.jpg",
    "0000_c1s1_000013_01.jpg",  # distractors (pid 0): kept
    "0000_c5s1_000014_01.jpg",
    "-1_c1s1_000015_01.jpg",  # junk (pid -1): dropped
    "-1_c3s1_000016_01.jpg",
    "-1_c2s1_000017_01.jpg",
]


@pytest.fixture
def market_root(tmp_path: Path, write_images) -> Path:
    base = tmp_path / "Market-1501-v15.09.15"
    write_images(base / "bounding_box_train", TRAIN)
    write_images(base / "query", QUERY)
    write_images(base / "bounding_box_test", GALLERY)
    (base / "bounding_box_train" / "Thumbs.db").write_bytes(b"not an image")
    return tmp_path


def test_market_counts_junk_and_distractors(market_root: Path) -> None:
    splits = Market1501Dataset(root=market_root).load()

    assert splits.name == "market1501"
    assert splits.train.summary() == {"ids": 3, "cams": 5, "images": 5}
    assert splits.query.summary() == {"ids": 2, "cams": 2, "images": 2}
    assert splits.gallery.summary() == {"ids": 3, "cams": 4, "images": 5}
    assert splits.train.pids == {2, 7, 10}  # raw pids, not relabelled
    assert splits.gallery.pids == {0, 11, 12}
    assert -1 not in splits.gallery.pids
    assert "dropped 3 junk images (pid -1)" in splits.notes
    assert "kept 2 distractor images (pid 0) in the gallery" in splits.notes
    assert {record.dataset for record in splits.train.records} == {"market1501"}


def test_market_cameras_are_zero_based(market_root: Path) -> None:
    train = Market1501Dataset(root=market_root).load().train
    cams = {record.path.name: record.camid for record in train.records}
    assert cams["0002_c1s1_000451_03.jpg"] == 0
    assert cams["0007_c6s2_000201_02.jpg"] == 5
    assert train.camids == {0, 1, 2, 3, 5}


def test_market_reads_split_folders_directly_under_root(tmp_path: Path, write_images) -> None:
    write_images(tmp_path / "bounding_box_train", TRAIN)
    write_images(tmp_path / "query", QUERY)
    write_images(tmp_path / "bounding_box_test", GALLERY[:3])

    splits = Market1501Dataset(root=tmp_path).load()

    assert [len(splits.train), len(splits.query), len(splits.gallery)] == [5, 2, 3]
    assert not any("junk" in note or "distractor" in note for note in splits.notes)


def test_missing_root_names_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="nowhere") as caught:
        Market1501Dataset(root=missing).load()
    assert str(missing) in str(caught.value)
    assert "market1501" in str(caught.value)


def test_missing_split_folder_is_named(tmp_path: Path, write_images) -> None:
    write_images(tmp_path / "bounding_box_train", TRAIN)
    write_images(tmp_path / "bounding_box_test", GALLERY)
    with pytest.raises(DatasetError) as caught:
        Market1501Dataset(root=tmp_path).load()
    assert str(tmp_path / "query") in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"\x00garbage, not a JPEG at all"])
def test_corrupt_image_is_named(market_root: Path, content: bytes) -> None:
    bad = market_root / "Market-1501-v15.09.15" / "query" / QUERY[1]
    bad.write_bytes(content)
    with pytest.raises(DatasetError, match="not a readable image") as caught:
        Market1501Dataset(root=market_root).load()
    assert str(bad) in str(caught.value)


def test_unparsable_name_is_named_with_the_pattern(market_root: Path, write_images) -> None:
    (bad,) = write_images(market_root / "Market-1501-v15.09.15" / "bounding_box_train", ["x.jpg"])
    with pytest.raises(DatasetError, match=re.escape("0002_c1s1_000451_03.jpg")) as caught:
        Market1501Dataset(root=market_root).load()
    assert str(bad) in str(caught.value)


def test_empty_split_names_the_folder(market_root: Path) -> None:
    query = market_root / "Market-1501-v15.09.15" / "query"
    for path in query.iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="holds no query images") as caught:
        Market1501Dataset(root=market_root).load()
    assert str(query) in str(caught.value)


def test_split_of_only_junk_is_empty(market_root: Path, write_images) -> None:
    query = market_root / "Market-1501-v15.09.15" / "query"
    for path in query.iterdir():
        path.unlink()
    write_images(query, ["-1_c1s1_000001_00.jpg"])
    with pytest.raises(DatasetError, match="holds no query images"):
        Market1501Dataset(root=market_root).load()


def test_dukemtmc_layout_and_eight_cameras(tmp_path: Path, write_images) -> None:
    base = tmp_path / "DukeMTMC-reID"
    write_images(
        base / "bounding_box_train",
        ["0001_c2_f0046182.jpg", "0001_c8_f0046500.jpg", "0003_c1_f0050000.jpg"],
    )
    write_images(base / "query", ["0005_c1_f0000001.jpg"])
    write_images(
        base / "bounding_box_test",
        ["0005_c3_f0000002.jpg", "0005_c7_f0000003.jpg", "0009_c4_f0000004.jpg"],
    )

    splits = DukeMTMCDataset(root=tmp_path).load()

    assert splits.name == "dukemtmc"
    assert splits.train.summary() == {"ids": 2, "cams": 3, "images": 3}
    assert splits.train.camids == {1, 7, 0}
    assert splits.query.summary() == {"ids": 1, "cams": 1, "images": 1}
    assert splits.gallery.summary() == {"ids": 2, "cams": 3, "images": 3}
    assert splits.gallery.camids == {2, 6, 3}


def test_dukemtmc_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="DukeMTMC-reID"):
        DukeMTMCDataset(root=tmp_path / "duke").load()
