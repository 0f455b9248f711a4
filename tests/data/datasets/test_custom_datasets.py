"""Manifest (CSV) and folder-per-identity datasets: ids, cameras, split rules and errors."""

import re
from pathlib import Path

import pytest

from reid_platform.data.datasets import FolderDataset, ManifestDataset
from reid_platform.errors import ConfigError, DatasetError

# ---------------------------------------------------------------- manifest


def test_manifest_with_split(tmp_path: Path, write_images, write_text) -> None:
    write_images(tmp_path / "imgs", ["a.jpg", "b.jpg", "c.png", "d.jpg", "e.jpg", "f.jpg"])
    write_text(
        tmp_path / "manifest.csv",
        [
            "path,pid,camid,split",
            "imgs/a.jpg,1,0,train",
            "imgs/b.jpg,1,1,train",
            "imgs/c.png,2,0,train",
            "",
            "imgs/d.jpg,7,0,query",
            "imgs/e.jpg,7,1,gallery",
            f"{tmp_path / 'imgs' / 'f.jpg'},8,2,gallery",
        ],
    )

    splits = ManifestDataset(root=tmp_path).load()

    assert splits.name == "manifest"
    assert splits.train.summary() == {"ids": 2, "cams": 2, "images": 3}
    assert splits.query.summary() == {"ids": 1, "cams": 1, "images": 1}
    assert splits.gallery.summary() == {"ids": 2, "cams": 2, "images": 2}
    assert splits.train.records[2].path == tmp_path / "imgs" / "c.png"
    assert splits.gallery.records[1].path == tmp_path / "imgs" / "f.jpg"


def test_manifest_without_split_is_train_only(tmp_path: Path, write_images, write_text) -> None:
    write_images(tmp_path, ["a.jpg", "b.jpg"])
    write_text(tmp_path / "list.csv", ["camid,path,pid", "3,a.jpg,5", "4,b.jpg,6"])

    splits = ManifestDataset(root=tmp_path, file="list.csv").load()

    assert splits.train.summary() == {"ids": 2, "cams": 2, "images": 2}
    assert splits.train.camids == {3, 4}
    assert len(splits.query) == len(splits.gallery) == 0
    assert any("no split column" in note for note in splits.notes)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("a.jpg,x,0,train", "integer pid"),
        ("a.jpg,1,0,test", "split of train, query or gallery"),
        ("a.jpg,1,0", "expected 4 columns"),
    ],
)
def test_manifest_bad_row_names_file_and_line(
    tmp_path: Path, write_images, write_text, row: str, match: str
) -> None:
    write_images(tmp_path, ["a.jpg"])
    manifest = write_text(
        tmp_path / "manifest.csv", ["path,pid,camid,split", "a.jpg,1,0,train", row]
    )
    with pytest.raises(DatasetError, match=match) as caught:
        ManifestDataset(root=tmp_path).load()
    assert f"line 3 of {manifest}" in str(caught.value)


def test_manifest_header_required(tmp_path: Path, write_images, write_text) -> None:
    write_images(tmp_path, ["a.jpg"])
    manifest = write_text(tmp_path / "manifest.csv", ["a.jpg,1,0"])
    with pytest.raises(DatasetError, match="header") as caught:
        ManifestDataset(root=tmp_path).load()
    assert str(manifest) in str(caught.value)


def test_manifest_query_without_gallery(tmp_path: Path, write_images, write_text) -> None:
    write_images(tmp_path, ["a.jpg", "b.jpg"])
    write_text(
        tmp_path / "manifest.csv", ["path,pid,camid,split", "a.jpg,1,0,train", "b.jpg,1,1,query"]
    )
    with pytest.raises(DatasetError, match="query rows but no gallery rows"):
        ManifestDataset(root=tmp_path).load()


def test_manifest_missing_and_corrupt_images(tmp_path: Path, write_images, write_text) -> None:
    write_images(tmp_path, ["a.jpg"])
    write_text(tmp_path / "manifest.csv", ["path,pid,camid", "a.jpg,1,0", "gone.jpg,2,0"])
    with pytest.raises(DatasetError, match="does not exist") as caught:
        ManifestDataset(root=tmp_path).load()
    assert str(tmp_path / "gone.jpg") in str(caught.value)

    (tmp_path / "gone.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable image"):
        ManifestDataset(root=tmp_path).load()


def test_manifest_missing_file_and_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape("manifest.csv")):
        ManifestDataset(root=tmp_path).load()
    with pytest.raises(DatasetError, match="does not exist"):
        ManifestDataset(root=tmp_path / "none").load()


# ---------------------------------------------------------------- folder


def make_folder_tree(root: Path, write_images, *, named: bool) -> None:
    ids = ("alice", "bob", "carol") if named else ("0003", "0010", "0042")
    write_images(root / "train" / ids[0], ["x_c1_1.jpg", "x_c2_2.jpg"])
    write_images(root / "train" / ids[1], ["y_c1_1.png"])
    write_images(root / "query" / ids[2], ["z_c1_1.jpg"])
    write_images(root / "gallery" / ids[2], ["z_c2_2.jpg", "z_c3_3.jpg"])
    write_images(root / "gallery" / ids[0], ["x_c3_9.jpg"])


def test_folder_integer_ids_and_default_cameras(tmp_path: Path, write_images) -> None:
    make_folder_tree(tmp_path, write_images, named=False)

    splits = FolderDataset(root=tmp_path).load()

    assert splits.name == "folder"
    assert splits.train.summary() == {"ids": 2, "cams": 1, "images": 3}
    assert splits.train.pids == {3, 10}
    assert splits.query.pids == {42}
    assert splits.gallery.pids == {3, 42}
    assert splits.train.camids == splits.query.camids == {0}
    assert splits.gallery.camids == {1}
    assert any("no camera_pattern" in note for note in splits.notes)


def test_folder_named_ids_are_consistent_across_splits(tmp_path: Path, write_images) -> None:
    make_folder_tree(tmp_path, write_images, named=True)

    splits = FolderDataset(root=tmp_path).load()

    # alice, bob, carol in sorted order -> 0, 1, 2 in every split
    assert splits.train.pids == {0, 1}
    assert splits.query.pids == {2}
    assert splits.gallery.pids == {0, 2}
    assert any("numbered 3 names" in note for note in splits.notes)


def test_folder_camera_pattern(tmp_path: Path, write_images) -> None:
    make_folder_tree(tmp_path, write_images, named=False)

    splits = FolderDataset(root=tmp_path, camera_pattern=r"_c(\d+)_").load()

    assert splits.train.camids == {1, 2}
    assert splits.query.camids == {1}
    assert splits.gallery.camids == {2, 3}
    assert not any("no camera_pattern" in note for note in splits.notes)


def test_folder_camera_pattern_mismatch(tmp_path: Path, write_images) -> None:
    make_folder_tree(tmp_path, write_images, named=False)
    (bad,) = write_images(tmp_path / "gallery" / "0042", ["nocamera.jpg"])
    with pytest.raises(DatasetError, match="camera_pattern") as caught:
        FolderDataset(root=tmp_path, camera_pattern=r"_c(\d+)_").load()
    assert str(bad) in str(caught.value)


def test_folder_bad_camera_pattern_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("folder.camera_pattern")):
        FolderDataset(root=tmp_path, camera_pattern="_c(").load()
    with pytest.raises(ConfigError, match="no group"):
        FolderDataset(root=tmp_path, camera_pattern=r"_c\d+").load()


def test_folder_train_only(tmp_path: Path, write_images) -> None:
    write_images(tmp_path / "train" / "1", ["a.jpg", "b.jpg"])
    splits = FolderDataset(root=tmp_path).load()
    assert splits.train.summary() == {"ids": 1, "cams": 1, "images": 2}
    assert len(splits.query) == len(splits.gallery) == 0
    assert any("training-only" in note for note in splits.notes)


def test_folder_query_without_gallery(tmp_path: Path, write_images) -> None:
    write_images(tmp_path / "train" / "1", ["a.jpg"])
    write_images(tmp_path / "query" / "2", ["b.jpg"])
    with pytest.raises(DatasetError) as caught:
        FolderDataset(root=tmp_path).load()
    assert str(tmp_path / "gallery") in str(caught.value)


def test_folder_empty_split_and_loose_image(tmp_path: Path, write_images) -> None:
    make_folder_tree(tmp_path, write_images, named=False)
    for identity in (tmp_path / "query").iterdir():
        for path in identity.iterdir():
            path.unlink()
    with pytest.raises(DatasetError, match="holds no query images") as caught:
        FolderDataset(root=tmp_path).load()
    assert str(tmp_path / "query") in str(caught.value)

    (loose,) = write_images(tmp_path / "query", ["loose.jpg"])
    with pytest.raises(DatasetError, match="lies directly in") as caught:
        FolderDataset(root=tmp_path).load()
    assert str(loose) in str(caught.value)


def test_folder_corrupt_image_and_missing_root(tmp_path: Path, write_images) -> None:
    make_folder_tree(tmp_path, write_images, named=False)
    bad = tmp_path / "train" / "0010" / "y_c1_1.png"
    bad.write_bytes(b"")
    with pytest.raises(DatasetError, match="not a readable image") as caught:
        FolderDataset(root=tmp_path).load()
    assert str(bad) in str(caught.value)
    with pytest.raises(DatasetError, match="does not exist"):
        FolderDataset(root=tmp_path / "none").load()
