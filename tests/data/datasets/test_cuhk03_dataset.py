"""CUHK03 new protocol: the CUHK03-NP Market-style layout and the reference's .mat layout."""

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from reid_platform.data.datasets import CUHK03Dataset
from reid_platform.errors import DatasetError

NP_TRAIN = ["0001_c1_1.png", "0001_c2_6.png", "0002_c1_1.png", "0002_c2_2.png"]
NP_QUERY = ["1368_c1_1.png", "1369_c2_1.png"]
NP_GALLERY = ["1368_c2_6.png", "1368_c2_7.png", "1369_c1_2.png"]

# (file name, label) in filelist order; 1-based indices below refer to this order
MAT_FILES = [
    ("1_001_1_01.png", 1),
    ("1_001_2_06.png", 1),
    ("1_002_1_01.png", 2),
    ("1_002_2_06.png", 2),
    ("2_001_1_01.png", 3),
    ("2_001_2_06.png", 3),
    ("2_001_2_07.png", 3),
    ("2_002_1_01.png", 4),
    ("2_002_2_06.png", 4),
]


def _column(values: list[int]) -> np.ndarray:
    """A MATLAB column of doubles, as the protocol files store labels and indices."""
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def make_np(root: Path, variant: str, write_images) -> Path:
    base = root / "cuhk03-np" / variant
    write_images(base / "bounding_box_train", NP_TRAIN)
    write_images(base / "query", NP_QUERY)
    write_images(base / "bounding_box_test", NP_GALLERY)
    return base


def make_mat(root: Path, variant: str, write_images, train_idx: list[int] | None = None) -> Path:
    base = root / "cuhk03"
    write_images(base / f"images_{variant}", [name for name, _ in MAT_FILES])
    filelist = np.empty((len(MAT_FILES), 1), dtype=object)  # a MATLAB cell array of char
    for row, (name, _) in enumerate(MAT_FILES):
        filelist[row, 0] = name
    savemat(
        base / f"cuhk03_new_protocol_config_{variant}.mat",
        {
            "filelist": filelist,
            "labels": _column([label for _, label in MAT_FILES]),
            "camId": _column([int(name.split("_")[2]) for name, _ in MAT_FILES]),
            "train_idx": _column(train_idx or [1, 2, 3, 4]),
            "query_idx": _column([5, 8]),
            "gallery_idx": _column([6, 7, 9]),
        },
    )
    return base


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_np_layout(tmp_path: Path, write_images, variant: str) -> None:
    make_np(tmp_path, variant, write_images)

    splits = CUHK03Dataset(root=tmp_path, variant=variant).load()

    assert splits.name == "cuhk03"
    assert splits.train.summary() == {"ids": 2, "cams": 2, "images": 4}
    assert splits.query.summary() == {"ids": 2, "cams": 2, "images": 2}
    assert splits.gallery.summary() == {"ids": 2, "cams": 2, "images": 3}
    assert splits.query.pids == {1368, 1369}
    assert splits.train.camids == {0, 1}
    assert all(f"/{variant}/" in record.path.as_posix() for record in splits.gallery.records)


def test_np_variant_folder_missing(tmp_path: Path, write_images) -> None:
    make_np(tmp_path, "labeled", write_images)
    with pytest.raises(DatasetError, match="cuhk03-np/detected") as caught:
        CUHK03Dataset(root=tmp_path, variant="detected").load()
    assert str(tmp_path) in str(caught.value)


def test_mat_layout(tmp_path: Path, write_images) -> None:
    make_mat(tmp_path, "labeled", write_images)

    splits = CUHK03Dataset(root=tmp_path, variant="labeled").load()

    assert splits.train.summary() == {"ids": 2, "cams": 2, "images": 4}
    assert splits.train.pids == {1, 2}
    assert [r.path.name for r in splits.query.records] == ["2_001_1_01.png", "2_002_1_01.png"]
    assert splits.query.summary() == {"ids": 2, "cams": 1, "images": 2}
    assert splits.query.camids == {0}
    assert splits.gallery.summary() == {"ids": 2, "cams": 1, "images": 3}
    assert splits.gallery.camids == {1}
    assert splits.gallery.pids == {3, 4}


def test_mat_root_may_be_the_cuhk03_folder(tmp_path: Path, write_images) -> None:
    base = make_mat(tmp_path, "detected", write_images)
    splits = CUHK03Dataset(root=base, variant="detected").load()
    assert len(splits.gallery) == 3


def test_mat_index_out_of_range(tmp_path: Path, write_images) -> None:
    base = make_mat(tmp_path, "labeled", write_images, train_idx=[1, 2, 10])
    with pytest.raises(DatasetError, match="train_idx entry 10") as caught:
        CUHK03Dataset(root=tmp_path).load()
    assert str(base / "cuhk03_new_protocol_config_labeled.mat") in str(caught.value)


def test_mat_corrupt_image(tmp_path: Path, write_images) -> None:
    base = make_mat(tmp_path, "labeled", write_images)
    bad = base / "images_labeled" / "2_001_2_07.png"
    bad.write_bytes(b"\x89PNG but then garbage")
    with pytest.raises(DatasetError, match="not a readable image") as caught:
        CUHK03Dataset(root=tmp_path).load()
    assert str(bad) in str(caught.value)


def test_mat_file_unreadable(tmp_path: Path, write_images) -> None:
    base = make_mat(tmp_path, "labeled", write_images)
    mat = base / "cuhk03_new_protocol_config_labeled.mat"
    mat.write_bytes(b"not a mat file")
    with pytest.raises(DatasetError) as caught:
        CUHK03Dataset(root=tmp_path).load()
    assert str(mat) in str(caught.value)


def test_neither_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="holds neither") as caught:
        CUHK03Dataset(root=tmp_path).load()
    assert str(tmp_path) in str(caught.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        CUHK03Dataset(root=tmp_path / "cuhk").load()


def test_np_unparsable_name(tmp_path: Path, write_images) -> None:
    base = make_np(tmp_path, "labeled", write_images)
    (bad,) = write_images(base / "query", ["person.png"])
    with pytest.raises(DatasetError, match=re.escape("0001_c1_1.png")) as caught:
        CUHK03Dataset(root=tmp_path).load()
    assert str(bad) in str(caught.value)
