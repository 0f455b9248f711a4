"""The `synthetic` dataset: generate on first use, read through the Market-1501 loader, refuse
folders that hold anything else."""

import json
import logging
import re
from pathlib import Path

import pytest

from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.datasets.synthetic import SyntheticDataset
from reid_platform.errors import DatasetError

SIZES = {"ids": 6, "cams": 2, "images_per_id": 4, "height": 32, "width": 16, "seed": 0}


def test_registered_under_synthetic() -> None:
    assert DATASETS.get("synthetic") is SyntheticDataset


def test_generates_on_first_use_and_reads_as_market(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "synthetic"
    with caplog.at_level(logging.INFO):
        splits = SyntheticDataset(root=root, **SIZES).load()
    assert any("generating the synthetic benchmark" in m for m in caplog.messages)
    assert splits.name == "synthetic"
    records = splits.train.records + splits.query.records + splits.gallery.records
    assert {record.dataset for record in records} == {"synthetic"}
    assert splits.train.summary() == {"ids": 3, "cams": 2, "images": 12}
    assert splits.query.pids == frozenset({4, 5, 6})
    assert splits.gallery.pids == frozenset({0, 4, 5, 6})  # pid 0 distractors kept
    assert -1 not in splits.gallery.pids  # junk dropped by the loader
    assert len(splits.query) + len(splits.gallery) == 3 * 4 + max(2, 3 * 4 // 8)


def test_second_load_reads_without_regenerating(tmp_path: Path) -> None:
    first = SyntheticDataset(root=tmp_path, **SIZES).load()
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jpg")}
    second = SyntheticDataset(root=tmp_path, **SIZES).load()
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jpg")} == stamps


def test_refuses_a_non_empty_folder_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path))):
        SyntheticDataset(root=tmp_path, **SIZES).load()
    assert [p.name for p in tmp_path.iterdir()] == ["holiday.jpg"]
    assert (tmp_path / "holiday.jpg").read_bytes() == b"precious"


def test_refuses_a_benchmark_made_with_other_parameters(tmp_path: Path) -> None:
    SyntheticDataset(root=tmp_path, **SIZES).load()
    manifest = (tmp_path / "synthetic.json").read_text()
    with pytest.raises(DatasetError, match=r"seed=0, not seed=1") as caught:
        SyntheticDataset(root=tmp_path, **(SIZES | {"seed": 1})).load()
    assert str(tmp_path) in str(caught.value)
    assert (tmp_path / "synthetic.json").read_text() == manifest
    assert json.loads(manifest)["parameters"]["seed"] == 0
