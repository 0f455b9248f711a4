"""`build_data`: each distinct dataset entry is scanned once and read with its own options."""

from pathlib import Path

from reid_platform.config.data import DataConfig
from reid_platform.config.loading import validate_section
from reid_platform.data.build import build_data


def test_same_root_with_other_options_is_read_separately(tmp_path: Path, write_images) -> None:
    root = tmp_path / "custom"
    for split in ("train", "query", "gallery"):
        write_images(root / split / "1", ["a_c1.jpg", "b_c2.jpg"])
        write_images(root / split / "2", ["a_c1.jpg", "b_c3.jpg"])
    plain = {"name": "folder", "root": str(root)}
    with_cameras = {**plain, "folder": {"camera_pattern": r"_c(\d+)"}}
    config = validate_section(
        DataConfig,
        {
            "train": [plain],
            "test": [with_cameras],
            "sampler": {"kind": "shuffle"},
            "loader": {"batch_size": 2},
        },
        "test",
    )
    data = build_data(config)
    # without a pattern the folder layout puts query on camera 0 and gallery on camera 1
    assert data.train.camids == frozenset({0})
    test = data.test[0]
    assert len(test.gallery.camids) == 3  # cameras 1, 2, 3 read from the file names
