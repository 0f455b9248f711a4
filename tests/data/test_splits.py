"""Combining training sets and carving validation identities, checked on hand-built records."""

from pathlib import Path

import pytest

from reid_platform.data.records import DatasetSplits, ImageRecord, make_split
from reid_platform.data.splits import carve_validation, combine_training_records
from reid_platform.errors import DatasetError


def records(dataset: str, layout: dict[int, list[int]]) -> list[ImageRecord]:
    """`layout` maps pid → the camera of each of its images."""
    return [
        ImageRecord(Path(f"{dataset}/{pid}_{i}.jpg"), pid, cam, dataset)
        for pid, cams in layout.items()
        for i, cam in enumerate(cams)
    ]


def splits(dataset: str, layout: dict[int, list[int]]) -> DatasetSplits:
    empty = make_split("x", [])
    return DatasetSplits(dataset, make_split("train", records(dataset, layout)), empty, empty)


def test_two_datasets_never_share_labels() -> None:
    a = splits("a", {7: [1, 2], 9: [1]})
    b = splits("b", {7: [1, 1, 3]})
    combined = combine_training_records([a, b])
    # (a,7)→0, (a,9)→1, (b,7)→2 ; cameras (a,1)→0, (a,2)→1, (b,1)→2, (b,3)→3
    assert [r.pid for r in combined.records] == [0, 0, 1, 2, 2, 2]
    assert [r.camid for r in combined.records] == [0, 1, 0, 2, 2, 3]


def test_validation_holds_out_whole_identities() -> None:
    layout = {pid: [0, 0, 1, 1, 2] for pid in range(10)}
    train = combine_training_records([splits("s", layout)])
    carved = carve_validation(train, num_ids=3, fraction=None, seed=5)
    val_ids = carved.val_query.pids | carved.val_gallery.pids
    assert len(val_ids) == 3
    assert len(carved.train.pids) == 7
    # training labels stay contiguous after the hold-out
    assert carved.train.pids == frozenset(range(7))
    # one query per camera per held-out id: 3 ids × 3 cameras; the other 2 images go to gallery
    assert len(carved.val_query) == 9
    assert len(carved.val_gallery) == 3 * 2
    assert len(carved.train) == 7 * 5
    for record in carved.val_query.records:
        others = [g for g in carved.val_gallery.records if g.pid == record.pid]
        assert any(g.camid != record.camid for g in others)


def test_validation_is_seeded() -> None:
    train = combine_training_records([splits("s", {p: [0, 1, 1] for p in range(20)})])
    first = carve_validation(train, num_ids=None, fraction=0.25, seed=1)
    again = carve_validation(train, num_ids=None, fraction=0.25, seed=1)
    other = carve_validation(train, num_ids=None, fraction=0.25, seed=2)
    assert first == again
    assert len(first.val_query.pids) == 5
    assert first.val_query.pids != other.val_query.pids


def test_multi_camera_identities_are_preferred() -> None:
    layout = {0: [0, 0, 0], 1: [0, 1], 2: [0, 0], 3: [2, 3, 3]}
    carved = carve_validation(
        combine_training_records([splits("s", layout)]), num_ids=2, fraction=None, seed=0
    )
    # labels: pid 1 → 1 and pid 3 → 3 are the only multi-camera identities
    assert carved.val_query.pids == frozenset({1, 3})


def test_single_camera_identities_get_distinct_gallery_cameras() -> None:
    layout = {pid: [0, 0, 0] for pid in range(4)}
    carved = carve_validation(
        combine_training_records([splits("s", layout)]), num_ids=2, fraction=None, seed=0
    )
    assert len(carved.val_query) == 2
    assert len(carved.val_gallery) == 4
    assert all(g.camid != 0 for g in carved.val_gallery.records)
    assert any("one camera" in note for note in carved.notes)


def test_no_validation_requested() -> None:
    train = combine_training_records([splits("s", {0: [0, 1], 1: [0, 1]})])
    carved = carve_validation(train, num_ids=None, fraction=None, seed=0)
    assert carved.train == train
    assert len(carved.val_query) == 0 and len(carved.val_gallery) == 0


def test_holding_out_everything_is_an_error() -> None:
    train = combine_training_records([splits("s", {0: [0, 1], 1: [0, 1]})])
    with pytest.raises(DatasetError, match="only 2"):
        carve_validation(train, num_ids=2, fraction=None, seed=0)
