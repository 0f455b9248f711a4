"""VeRi-776, VehicleID and VERI-Wild: folder and list layouts, cameras, seeded VehicleID gallery."""

import re
from pathlib import Path

import pytest

from reid_platform.data.datasets import VehicleIDDataset, VeRiDataset, VeRiWildDataset
from reid_platform.errors import DatasetError

# ---------------------------------------------------------------- VeRi-776


def make_veri(root: Path, folder: str, write_images) -> Path:
    base = root / folder
    write_images(
        base / "image_train",
        ["0001_c001_00016450_0.jpg", "0001_c020_00016460_0.jpg", "0002_c005_00020000_1.jpg"],
    )
    write_images(base / "image_query", ["0010_c002_00030000_0.jpg", "0011_c003_00030010_0.jpg"])
    write_images(
        base / "image_test",
        ["0010_c004_00031000_0.jpg", "0011_c003_00031010_0.jpg", "0011_c019_00031020_0.jpg"],
    )
    return base


@pytest.mark.parametrize("folder", ["VeRi", "veri"])
def test_veri_counts_and_cameras(tmp_path: Path, write_images, folder: str) -> None:
    make_veri(tmp_path, folder, write_images)

    splits = VeRiDataset(root=tmp_path).load()

    assert splits.name == "veri"
    assert splits.train.summary() == {"ids": 2, "cams": 3, "images": 3}
    assert splits.train.camids == {0, 19, 4}
    assert splits.query.summary() == {"ids": 2, "cams": 2, "images": 2}
    assert splits.gallery.summary() == {"ids": 2, "cams": 3, "images": 3}
    assert splits.gallery.camids == {3, 2, 18}


def test_veri_unparsable_name(tmp_path: Path, write_images) -> None:
    base = make_veri(tmp_path, "VeRi", write_images)
    (bad,) = write_images(base / "image_test", ["0010_c4_00031000_0.jpg"])  # 1 camera digit
    with pytest.raises(DatasetError, match=re.escape("0001_c001_00016450_0.jpg")) as caught:
        VeRiDataset(root=tmp_path).load()
    assert str(bad) in str(caught.value)


def test_veri_empty_split(tmp_path: Path, write_images) -> None:
    base = make_veri(tmp_path, "VeRi", write_images)
    for path in (base / "image_query").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="holds no query images") as caught:
        VeRiDataset(root=tmp_path).load()
    assert str(base / "image_query") in str(caught.value)


def test_veri_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="image_train"):
        VeRiDataset(root=tmp_path / "none").load()


# ---------------------------------------------------------------- VehicleID

TEST_VIDS = range(100, 106)  # 6 vehicles x 4 images in test_list_800


def make_vehicleid(root: Path, folder: str, write_images, write_text) -> Path:
    base = root / folder
    train = [f"{i:07d} {i // 3}" for i in range(9)]  # 9 images, vids 0, 1, 2
    test_800 = [
        f"{1000 + 4 * k + j:07d} {vid}" for k, vid in enumerate(TEST_VIDS) for j in range(4)
    ]
    test_1600 = [*test_800, "0002000 200", "0002001 200"]
    write_text(base / "train_test_split" / "train_list.txt", train)
    write_text(base / "train_test_split" / "test_list_800.txt", test_800)
    write_text(base / "train_test_split" / "test_list_1600.txt", test_1600)
    write_text(base / "train_test_split" / "test_list_2400.txt", test_1600)
    images = [line.split()[0] + ".jpg" for line in (*train, *test_1600)]
    write_images(base / "image", images)
    return base


@pytest.mark.parametrize("folder", ["VehicleID_V1.0", "vehicleid"])
def test_vehicleid_counts(tmp_path: Path, write_images, write_text, folder: str) -> None:
    make_vehicleid(tmp_path, folder, write_images, write_text)

    splits = VehicleIDDataset(root=tmp_path).load()

    assert splits.name == "vehicleid"
    assert splits.train.summary() == {"ids": 3, "cams": 9, "images": 9}
    assert splits.gallery.summary() == {"ids": 6, "cams": 6, "images": 6}
    assert splits.query.summary() == {"ids": 6, "cams": 18, "images": 18}
    # every test image is its own camera: query and gallery camera ids never meet
    assert not splits.query.camids & splits.gallery.camids
    gallery_paths = {record.path for record in splits.gallery.records}
    assert not gallery_paths & {record.path for record in splits.query.records}


def test_vehicleid_test_size_picks_the_list(tmp_path: Path, write_images, write_text) -> None:
    make_vehicleid(tmp_path, "VehicleID_V1.0", write_images, write_text)
    splits = VehicleIDDataset(root=tmp_path, test_size="medium").load()
    assert splits.gallery.summary()["ids"] == 7
    assert len(splits.query) + len(splits.gallery) == 26


def test_vehicleid_gallery_is_seeded(tmp_path: Path, write_images, write_text) -> None:
    make_vehicleid(tmp_path, "VehicleID_V1.0", write_images, write_text)

    def gallery(seed: int) -> list[Path]:
        splits = VehicleIDDataset(root=tmp_path, gallery_seed=seed).load()
        return [record.path for record in splits.gallery.records]

    assert gallery(0) == gallery(0)
    assert gallery(7) == gallery(7)
    assert gallery(0) != gallery(1)


def test_vehicleid_bad_line(tmp_path: Path, write_images, write_text) -> None:
    base = make_vehicleid(tmp_path, "VehicleID_V1.0", write_images, write_text)
    listing = write_text(base / "train_test_split" / "train_list.txt", ["0000000 0", "0000001"])
    with pytest.raises(DatasetError, match="line 2 of") as caught:
        VehicleIDDataset(root=tmp_path).load()
    assert str(listing) in str(caught.value)


def test_vehicleid_corrupt_image(tmp_path: Path, write_images, write_text) -> None:
    base = make_vehicleid(tmp_path, "VehicleID_V1.0", write_images, write_text)
    bad = base / "image" / "0001001.jpg"
    bad.write_bytes(b"")
    with pytest.raises(DatasetError, match="not a readable image") as caught:
        VehicleIDDataset(root=tmp_path).load()
    assert str(bad) in str(caught.value)


def test_vehicleid_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape("VehicleID_V1.0")):
        VehicleIDDataset(root=tmp_path / "none").load()


# ---------------------------------------------------------------- VERI-Wild

INFO = [
    "id/image;Camera ID;Time;Model;Type;Color",
    "00001/000001;1;2018-03-11 12:37:17;Audi A4L;Sedan;black",
    "00001/000002;2;2018-03-11 12:40:17;Audi A4L;Sedan;black",
    "00002/000003;1;2018-03-12 08:00:00;Buick;SUV;white",
    "00010/000010;5;2018-03-13 08:00:00;BMW;Sedan;red",
    "00010/000011;6;2018-03-13 09:00:00;BMW;Sedan;red",
    "00010/000012;5;2018-03-13 10:00:00;BMW;Sedan;red",
    "00011/000013;7;2018-03-14 08:00:00;Ford;SUV;blue",
    "00011/000014;8;2018-03-14 09:00:00;Ford;SUV;blue",
]


def make_veriwild(root: Path, write_images, write_text) -> Path:
    base = root / "VERI-Wild"
    split = base / "train_test_split"
    write_text(split / "vehicle_info.txt", INFO)
    write_text(split / "train_list.txt", ["00001/000001", "00001/000002", "00002/000003"])
    test = ["00010/000010", "00010/000011", "00010/000012", "00011/000013", "00011/000014"]
    write_text(split / "test_3000.txt", test)
    write_text(split / "test_3000_query.txt", ["00010/000010", "00011/000013"])
    write_text(split / "test_5000.txt", test[:3])
    write_text(split / "test_5000_query.txt", ["00010/000011"])
    write_images(base / "images", [line.split(";")[0] + ".jpg" for line in INFO[1:]])
    return base


def test_veriwild_counts_and_cameras(tmp_path: Path, write_images, write_text) -> None:
    make_veriwild(tmp_path, write_images, write_text)

    splits = VeRiWildDataset(root=tmp_path).load()

    assert splits.name == "veriwild"
    assert splits.train.summary() == {"ids": 2, "cams": 2, "images": 3}
    assert splits.query.summary() == {"ids": 2, "cams": 2, "images": 2}
    assert splits.query.camids == {5, 7}
    # the gallery is the whole test list, query images included (as in the reference)
    assert splits.gallery.summary() == {"ids": 2, "cams": 4, "images": 5}
    assert splits.gallery.pids == {10, 11}
    assert {r.path for r in splits.query.records} <= {r.path for r in splits.gallery.records}
    assert any(note.startswith("2 query images also in the gallery") for note in splits.notes)
    first = splits.train.records[0]
    assert first.path == tmp_path / "VERI-Wild" / "images" / "00001" / "000001.jpg"


def test_veriwild_test_size(tmp_path: Path, write_images, write_text) -> None:
    make_veriwild(tmp_path, write_images, write_text)
    splits = VeRiWildDataset(root=tmp_path, test_size="medium").load()
    assert [len(splits.query), len(splits.gallery)] == [1, 3]


def test_veriwild_missing_test_list(tmp_path: Path, write_images, write_text) -> None:
    base = make_veriwild(tmp_path, write_images, write_text)
    with pytest.raises(DatasetError, match=re.escape("test_10000.txt")) as caught:
        VeRiWildDataset(root=tmp_path, test_size="large").load()
    assert str(base / "train_test_split") in str(caught.value)


def test_veriwild_image_without_camera(tmp_path: Path, write_images, write_text) -> None:
    base = make_veriwild(tmp_path, write_images, write_text)
    listing = write_text(base / "train_test_split" / "train_list.txt", ["00001/000001", "00003/9"])
    with pytest.raises(DatasetError, match="line 2 of") as caught:
        VeRiWildDataset(root=tmp_path).load()
    assert str(listing) in str(caught.value)


def test_veriwild_corrupt_image(tmp_path: Path, write_images, write_text) -> None:
    base = make_veriwild(tmp_path, write_images, write_text)
    bad = base / "images" / "00011" / "000014.jpg"
    bad.write_bytes(b"JFIF? no")
    with pytest.raises(DatasetError, match="not a readable image") as caught:
        VeRiWildDataset(root=tmp_path).load()
    assert str(bad) in str(caught.value)


def test_veriwild_empty_list(tmp_path: Path, write_images, write_text) -> None:
    base = make_veriwild(tmp_path, write_images, write_text)
    listing = write_text(base / "train_test_split" / "test_3000_query.txt", [])
    with pytest.raises(DatasetError, match="holds no listed images") as caught:
        VeRiWildDataset(root=tmp_path).load()
    assert str(listing) in str(caught.value)


def test_veriwild_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="VERI-Wild"):
        VeRiWildDataset(root=tmp_path / "none").load()
