"""Verification images: whole identities in pid order within a limit, through the test loader;
training images (parity only) when there is no validation split."""

from pathlib import Path

import numpy as np
import pytest
import torch

from reid_platform.config import ReidConfig, load_config
from reid_platform.data.build import build_data
from reid_platform.data.records import ImageRecord
from reid_platform.export import load_validation_images
from reid_platform.export.validation_images import whole_identities

TINY = [
    "data.train.0.synthetic.ids=12",
    "data.test.0.synthetic.ids=12",
    "data.train.0.synthetic.images_per_id=6",
    "data.test.0.synthetic.images_per_id=6",
    "data.loader.num_workers=0",
    "data.loader.test_batch_size=5",
    "input.size_test=[32,16]",
]


def _record(pid: int, index: int) -> ImageRecord:
    return ImageRecord(Path(f"{pid}_{index}.jpg"), pid, index % 2, "hand")


def test_whole_identities_fill_the_limit_in_pid_order() -> None:
    # pid 7: 3 images, pid 2: 5 images, pid 4: 2 images, pid 9: 1 image.
    query = [_record(7, 0), _record(2, 0), _record(4, 0), _record(9, 0)]
    gallery = [_record(2, i) for i in range(1, 5)] + [_record(7, 1), _record(7, 2), _record(4, 1)]
    # In pid order: 2 (5 images, total 5), 4 (2, total 7), 7 (3 would make 10 > 9: left out),
    # 9 (1, total 8).
    chosen_query, chosen_gallery = whole_identities(query, gallery, limit=9)
    assert [(r.pid, r.path.name) for r in chosen_query] == [
        (2, "2_0.jpg"),
        (4, "4_0.jpg"),
        (9, "9_0.jpg"),
    ]
    assert [r.path.name for r in chosen_gallery] == [
        "2_1.jpg",
        "2_2.jpg",
        "2_3.jpg",
        "2_4.jpg",
        "4_1.jpg",
    ]
    assert whole_identities(query, gallery, limit=100) == (query, gallery)
    assert whole_identities(query, gallery, limit=0) == ([], [])


def test_a_minimum_keeps_whole_identities_past_the_limit() -> None:
    # pid 2: 5 images, pid 4: 2 images, pid 7: 3 images. Limit 4 alone keeps only pid 4.
    query = [_record(2, 0), _record(4, 0), _record(7, 0)]
    gallery = [_record(2, i) for i in range(1, 5)] + [_record(4, 1), _record(7, 1), _record(7, 2)]
    assert whole_identities(query, gallery, limit=4) == ([query[1]], [gallery[4]])
    # At least 7: pid 2 (5, past the limit), then pid 4 (2, total 7); pid 7 would pass 4 again.
    chosen_query, chosen_gallery = whole_identities(query, gallery, limit=4, minimum=7)
    assert [r.pid for r in chosen_query] == [2, 4]
    assert [r.pid for r in chosen_gallery] == [2, 2, 2, 2, 4]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("validation_images") / "synthetic"


def _config(data_root: Path, *overrides: str) -> ReidConfig:
    roots = [f"data.train.0.root={data_root}", f"data.test.0.root={data_root}"]
    return load_config("experiments/quickstart.yaml", [*TINY, *roots, *overrides])


def test_validation_images_are_whole_identities_through_the_test_loader(
    data_root: Path,
) -> None:
    config = _config(data_root, "data.validation.num_ids=3")
    data = build_data(config.data)
    per_id = 6
    images = load_validation_images(config, data, limit=2 * per_id + 1)
    assert images.source == "validation" and images.measures_map
    # Two of the three held-out identities fit in 13 images, the smallest pids first.
    val_pids = sorted(data.val_query.pids | data.val_gallery.pids)
    chosen = set(val_pids[:2])
    expected_query = [r for r in data.val_query.records if r.pid in chosen]
    expected_gallery = [r for r in data.val_gallery.records if r.pid in chosen]
    assert len(expected_query) + len(expected_gallery) == len(images) == 2 * per_id
    for loaded, records in ((images.query, expected_query), (images.gallery, expected_gallery)):
        assert loaded.pids.tolist() == [r.pid for r in records]
        assert loaded.camids.tolist() == [r.camid for r in records]
        assert loaded.images.dtype == torch.uint8
        assert tuple(loaded.images.shape) == (len(records), 3, 32, 16)
    assert images.images.float().std() > 0  # real pixels, 0-255, not mean/std-normalised
    assert int(images.images.max()) > 1


def test_a_limit_below_one_identity_still_gives_the_parity_batch(data_root: Path) -> None:
    config = _config(data_root, "data.validation.num_ids=3")
    data = build_data(config.data)
    # export.validation_images=8 with identities of 6 images: the first two whole identities
    # (12 images), not one identity (6 < 7, the parity batch).
    images = load_validation_images(config, data, limit=8)
    assert len(images) == 12
    first_ids = sorted(data.val_query.pids | data.val_gallery.pids)[:2]
    assert set(images.query.pids.tolist()) | set(images.gallery.pids.tolist()) == set(first_ids)


def test_without_a_validation_split_training_images_serve_parity_only(data_root: Path) -> None:
    config = _config(data_root, "data.validation.num_ids=null")
    data = build_data(config.data)
    assert not data.val_query.records
    images = load_validation_images(config, data, limit=16)
    assert images.source == "train" and not images.measures_map
    assert len(images.gallery.images) == 0 and len(images) == 12  # two whole ids of 6
    first_ids = sorted(data.train.pids)[:2]
    expected = [r for r in data.train.records if r.pid in first_ids]
    assert images.query.pids.tolist() == [r.pid for r in expected]
    np.testing.assert_array_equal(images.query.camids, [r.camid for r in expected])
