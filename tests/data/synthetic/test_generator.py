"""The synthetic benchmark generator: determinism, Market-1501 layout and counts, split rules.

Expected counts are worked out here from the documented rules, not read from the generator.
"""

import re
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from reid_platform.data.synthetic import MANIFEST, generate_synthetic_benchmark
from reid_platform.data.synthetic.plan import plan_benchmark
from reid_platform.errors import ConfigError, DatasetError

IDS, CAMS, PER_ID, HEIGHT, WIDTH = 10, 3, 6, 32, 16
FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
FULL_NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
MARKET_REGEX = re.compile(r"([-\d]+)_c(\d)")  # the reference Market-1501 loader's pattern


def generate(out: Path, *, seed: int = 3, workers: int = 1, **overrides: int) -> None:
    sizes = {"ids": IDS, "cams": CAMS, "images_per_id": PER_ID, "height": HEIGHT, "width": WIDTH}
    generate_synthetic_benchmark(out=out, seed=seed, workers=workers, **(sizes | overrides))


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def parsed(root: Path, folder: str) -> list[tuple[int, int]]:
    """(pid, camera) of every image in `folder`, parsed with the Market-1501 regex."""
    out = []
    for path in sorted((root / folder).iterdir()):
        match = MARKET_REGEX.search(path.name)
        assert match is not None, path.name
        out.append((int(match.group(1)), int(match.group(2))))
    return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "bench"
    generate(root)
    return root


def test_same_seed_gives_identical_bytes_whatever_the_workers(bench: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", workers=2)
    assert tree(tmp_path / "again") == tree(bench)


def test_another_seed_gives_other_images(bench: Path, tmp_path: Path) -> None:
    generate(tmp_path / "other", seed=4)
    first, second = tree(bench), tree(tmp_path / "other")
    shared = set(first) & set(second) - {MANIFEST}
    assert first != second
    assert all(first[name] != second[name] for name in shared)


def test_every_name_is_market_style_and_images_have_the_size(bench: Path) -> None:
    for folder in FOLDERS:
        for path in (bench / folder).iterdir():
            match = FULL_NAME.match(path.name)
            assert match is not None, path.name
            assert 1 <= int(match.group(2)) <= CAMS
    with Image.open(next((bench / "query").iterdir())) as image:
        assert image.size == (WIDTH, HEIGHT)
        assert image.format == "JPEG"


def test_counts_follow_from_the_parameters(bench: Path) -> None:
    n_train, n_test = IDS // 2, IDS - IDS // 2
    train, query, test = (parsed(bench, folder) for folder in FOLDERS)
    assert {pid for pid, _ in train} == set(range(1, n_train + 1))
    assert len(train) == n_train * PER_ID
    people = [item for item in query + test if item[0] > 0]
    assert {pid for pid, _ in people} == set(range(n_train + 1, IDS + 1))
    assert {pid for pid, _ in query} == set(range(n_train + 1, IDS + 1))
    assert len(people) == n_test * PER_ID
    assert sum(pid == 0 for pid, _ in test) == max(CAMS, n_test * PER_ID // 8)
    assert sum(pid == -1 for pid, _ in test) == CAMS
    for split in (train, query, test):
        assert {cam for _, cam in split} == set(range(1, CAMS + 1))


def test_identities_span_cameras_and_test_ids_query_once_per_camera(bench: Path) -> None:
    cams_of: defaultdict[int, list[int]] = defaultdict(list)
    for folder in FOLDERS:
        for pid, cam in parsed(bench, folder):
            cams_of[pid].append(cam)
    for pid in range(1, IDS + 1):
        assert len(cams_of[pid]) == PER_ID
        assert len(set(cams_of[pid])) >= 2
    query = parsed(bench, "query")
    assert len(query) == len(set(query))
    for pid in range(IDS // 2 + 1, IDS + 1):
        assert sorted(cam for p, cam in query if p == pid) == sorted(set(cams_of[pid]))


def test_every_query_has_a_gallery_match_in_another_camera(bench: Path) -> None:
    gallery = set(parsed(bench, "bounding_box_test"))
    for pid, cam in parsed(bench, "query"):
        assert any(p == pid and c != cam for p, c in gallery), (pid, cam)


@pytest.mark.parametrize("images_per_id", [2, 3, 4, 5])
def test_few_images_per_id_still_give_cross_camera_queries(images_per_id: int) -> None:
    jobs = plan_benchmark(ids=12, cams=5, images_per_id=images_per_id, seed=1)
    queries = [(j.pid, j.camid) for j in jobs if j.folder == "query"]
    gallery = [(j.pid, j.camid) for j in jobs if j.folder == "bounding_box_test" and j.pid > 0]
    assert {pid for pid, _ in queries} == set(range(7, 13))
    for pid, cam in queries:
        assert any(p == pid and c != cam for p, c in gallery)
    assert len({j.name for j in jobs}) == len(jobs)


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        generate(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_generates_into_an_existing_empty_folder(tmp_path: Path) -> None:
    generate(tmp_path, ids=4, cams=2, images_per_id=4)
    assert (tmp_path / MANIFEST).is_file()
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}")]


def test_rejects_more_cameras_than_one_digit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cams"):
        generate(tmp_path / "x", cams=10)
    assert not (tmp_path / "x").exists()
