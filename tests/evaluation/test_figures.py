"""Rank-list images, ROC figure + csv and distance histogram, checked on hand-worked cases.

Rank-list geometry is recomputed here from the layout constants (border, gaps, caption), and
pixels are read back at the places a tile's border and centre must be.
"""

import csv
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.figures import (
    histogram_density,
    per_query_average_precision,
    save_distance_histogram,
    save_rank_lists,
    save_roc_csv,
    save_roc_figure,
    select_rank_list_queries,
    top_k_gallery,
)
from reid_platform.evaluation.figures.ranklist import (
    BORDER,
    CAPTION_HEIGHT,
    GAP,
    MARGIN,
    MATCH_COLOUR,
    MISMATCH_COLOUR,
    PLACEHOLDER_COLOUR,
    QUERY_COLOUR,
    QUERY_GAP,
)

THUMB = (32, 16)  # (height, width): small thumbnails keep the tests fast

# Query 0 (pid 1, cam 0) against six gallery items, worked by hand:
#   g0 pid 1 cam 0 d 0.0  junk (same pid and camera), must not appear
#   g1 pid 2 cam 1 d 0.1  rank 1, red
#   g2 pid 1 cam 1 d 0.2  rank 2, green (ties g3; lower index first)
#   g3 pid 3 cam 0 d 0.2  rank 3, red
#   g4 pid 1 cam 2 d 0.5  rank 4, green
#   g5 pid 4 cam 1 d 0.9  rank 5, beyond top_k = 4
# Query 1 (pid 2, cam 1): only match g1 is junk, so it has no valid AP (NaN).
G_PIDS = np.array([1, 2, 1, 3, 1, 4], dtype=np.int64)
G_CAMIDS = np.array([0, 1, 1, 0, 2, 1], dtype=np.int64)
Q_PIDS = np.array([1, 2], dtype=np.int64)
Q_CAMIDS = np.array([0, 1], dtype=np.int64)
DISTMAT = np.array(
    [[0.0, 0.1, 0.2, 0.2, 0.5, 0.9], [0.3, 0.0, 0.4, 0.6, 0.7, 0.8]], dtype=np.float32
)
EXPECTED_ORDER = [1, 2, 3, 4]
EXPECTED_COLOURS = [MISMATCH_COLOUR, MATCH_COLOUR, MISMATCH_COLOUR, MATCH_COLOUR]


def _solid_images(folder: Path, count: int, prefix: str) -> list[Path]:
    """PNG files of distinct solid colours (exact after resizing), one per index."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"{prefix}{index}.png"
        Image.new("RGB", (8, 16), _source_colour(prefix, index)).save(path)
        paths.append(path)
    return paths


def _source_colour(prefix: str, index: int) -> tuple[int, int, int]:
    return (30 + 40 * index, 200 if prefix == "g" else 60, 100)


def _tile_origin(position: int) -> tuple[int, int]:
    """Top-left pixel of tile `position` (0 = query, 1.. = gallery ranks)."""
    tile_width = THUMB[1] + 2 * BORDER
    if position == 0:
        return MARGIN, MARGIN
    return MARGIN + tile_width + QUERY_GAP + (position - 1) * (tile_width + GAP), MARGIN


def _border_pixel(image: Image.Image, position: int) -> tuple[int, int, int]:
    x, y = _tile_origin(position)
    return image.getpixel((x + 1, y + 1))  # type: ignore[return-value]


def _centre_pixel(image: Image.Image, position: int) -> tuple[int, int, int]:
    x, y = _tile_origin(position)
    return image.getpixel((x + BORDER + THUMB[1] // 2, y + BORDER + THUMB[0] // 2))  # type: ignore[return-value]


def _save_toy(tmp_path: Path, top_k: int = 4, g_paths: list[Path] | None = None) -> list[Path]:
    q_paths = _solid_images(tmp_path / "query", 2, "q")
    g_paths = g_paths or _solid_images(tmp_path / "gallery", 6, "g")
    ap = np.array([0.75, np.nan])
    return save_rank_lists(
        DISTMAT, q_paths, g_paths, Q_PIDS, G_PIDS, Q_CAMIDS, G_CAMIDS, ap,
        tmp_path / "out", num_queries=8, top_k=top_k, thumb_size=THUMB,
    )  # fmt: skip


def test_rank_list_size_colours_and_order_match_hand_worked_case(tmp_path: Path) -> None:
    written = _save_toy(tmp_path)
    # One valid query (query 1 has NaN AP): it is the single "best" list.
    assert [path.name for path in written] == ["best_1_q0.png"]
    image = Image.open(written[0]).convert("RGB")
    tile_width, tile_height = THUMB[1] + 2 * BORDER, THUMB[0] + 2 * BORDER + CAPTION_HEIGHT
    top_k = 4
    expected_width = 2 * MARGIN + tile_width + QUERY_GAP + top_k * tile_width + (top_k - 1) * GAP
    assert image.size == (expected_width, 2 * MARGIN + tile_height)
    assert _border_pixel(image, 0) == QUERY_COLOUR
    assert _centre_pixel(image, 0) == _source_colour("q", 0)
    for rank, (gallery_index, colour) in enumerate(
        zip(EXPECTED_ORDER, EXPECTED_COLOURS, strict=True), start=1
    ):
        assert _border_pixel(image, rank) == colour, f"rank {rank}"
        assert _centre_pixel(image, rank) == _source_colour("g", gallery_index), f"rank {rank}"
    shown_centres = {_centre_pixel(image, rank) for rank in range(1, top_k + 1)}
    assert _source_colour("g", 0) not in shown_centres  # the junk item


def test_short_gallery_shows_only_what_remains(tmp_path: Path) -> None:
    # top_k above the 5 non-junk items: the image holds exactly 5 gallery tiles.
    image = Image.open(_save_toy(tmp_path, top_k=10)[0]).convert("RGB")
    tile_width = THUMB[1] + 2 * BORDER
    assert image.size[0] == 2 * MARGIN + tile_width + QUERY_GAP + 5 * tile_width + 4 * GAP
    assert _border_pixel(image, 5) == MISMATCH_COLOUR


def test_unreadable_images_become_placeholders(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    g_paths = _solid_images(tmp_path / "gallery", 6, "g")
    g_paths[1].unlink()  # missing file at rank 1
    g_paths[2].write_bytes(b"not an image")  # corrupt file at rank 2
    with caplog.at_level(logging.WARNING):
        written = _save_toy(tmp_path, g_paths=g_paths)
    image = Image.open(written[0]).convert("RGB")
    assert _centre_pixel(image, 1) == PLACEHOLDER_COLOUR
    assert _centre_pixel(image, 2) == PLACEHOLDER_COLOUR
    assert _border_pixel(image, 2) == MATCH_COLOUR  # borders still say match / non-match
    assert _centre_pixel(image, 3) == _source_colour("g", 3)
    assert sum("cannot read image" in record.getMessage() for record in caplog.records) == 2


def test_worst_and_best_selection_matches_hand_worked_ap() -> None:
    ap = np.array([0.5, np.nan, 0.2, 1.0, 0.2, 0.8, np.nan])
    # Valid by ascending AP (ties by index): 2, 4, 0, 5, 3.
    assert select_rank_list_queries(ap, 4) == ([2, 4], [3, 5])
    assert select_rank_list_queries(ap, 5) == ([2, 4], [3, 5, 0])
    # Fewer valid queries than asked: all five are shown, none twice, never a NaN one.
    assert select_rank_list_queries(ap, 20) == ([2, 4], [3, 5, 0])
    assert select_rank_list_queries(ap, 1) == ([], [3])
    assert select_rank_list_queries(np.full(3, np.nan), 8) == ([], [])


def test_nan_queries_are_never_chosen_and_files_are_named_by_rank(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    num_query, num_gallery = 12, 9
    ap = rng.random(num_query)
    ap[[0, 3, 4, 7, 8, 11]] = np.nan
    q_paths = _solid_images(tmp_path / "query", num_query, "q")
    g_paths = _solid_images(tmp_path / "gallery", num_gallery, "g")
    written = save_rank_lists(
        rng.random((num_query, num_gallery)).astype(np.float32), q_paths, g_paths,
        rng.integers(0, 3, num_query), rng.integers(0, 3, num_gallery),
        rng.integers(0, 2, num_query), rng.integers(0, 2, num_gallery), ap,
        tmp_path / "out", num_queries=4, top_k=3, thumb_size=THUMB,
    )  # fmt: skip
    valid = [1, 2, 5, 6, 9, 10]
    by_ap = sorted(valid, key=lambda index: ap[index])
    expected = [f"worst_{rank}_q{index}.png" for rank, index in enumerate(by_ap[:2], start=1)]
    expected += [f"best_{rank}_q{index}.png" for rank, index in enumerate(by_ap[::-1][:2], start=1)]
    assert [path.name for path in written] == expected
    assert all(path.is_file() for path in written)


def test_top_k_gallery_matches_full_stable_sort_with_ties() -> None:
    rng = np.random.default_rng(1)
    g_pids, g_camids = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
    for _ in range(20):
        distances = rng.integers(0, 6, 50).astype(np.float32)  # many ties
        q_pid, q_camid = int(rng.integers(0, 4)), int(rng.integers(0, 3))
        top_k = int(rng.integers(1, 60))
        naive = [
            int(index)
            for index in np.argsort(distances, kind="stable")
            if not (g_pids[index] == q_pid and g_camids[index] == q_camid)
        ][:top_k]
        got = top_k_gallery(distances, q_pid, q_camid, g_pids, g_camids, top_k)
        assert got.tolist() == naive


def test_rank_lists_reject_mismatched_sizes(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="g_camids"):
        save_rank_lists(
            DISTMAT, ["a", "b"], ["g"] * 6, Q_PIDS, G_PIDS, Q_CAMIDS, G_CAMIDS[:5],
            np.zeros(2), tmp_path,
        )  # fmt: skip


def test_per_query_average_precision_scatters_with_nan() -> None:
    got = per_query_average_precision(np.array([0.5, 0.25]), np.array([3, 1]), 5)
    np.testing.assert_array_equal(got, [np.nan, 0.25, np.nan, 0.5, np.nan])


def test_roc_csv_round_trips(tmp_path: Path) -> None:
    far = np.array([0.0, 1e-5, 1.0 / 3.0, 1.0])
    tar = np.array([0.0, 0.123456789012345678, 0.9, 1.0])
    thresholds = np.array([-np.inf, 0.1, 0.7, 2.0], dtype=np.float32)
    path = save_roc_csv(far, tar, thresholds, tmp_path / "roc" / "roc.csv")
    assert path == tmp_path / "roc" / "roc.csv"
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["far", "tar", "threshold"]
    assert len(rows) == 1 + far.size
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], far)
    np.testing.assert_array_equal(table[:, 1], tar)
    np.testing.assert_array_equal(table[:, 2], thresholds.astype(np.float64))


def test_roc_csv_rejects_mismatched_columns(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="thresholds"):
        save_roc_csv(np.zeros(3), np.zeros(3), np.zeros(2), tmp_path / "roc.csv")


def _assert_real_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= 300 and image.height >= 200
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20  # drawn content, not a blank canvas
    assert path.stat().st_size > 5_000


@pytest.mark.parametrize(
    "far",
    [
        np.array([0.0, 0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]),  # far = 0 on a log axis
        np.zeros(8),  # no positive FAR at all: falls back to the targets
    ],
)
def test_roc_figure_is_a_png_and_handles_zero_far(tmp_path: Path, far: np.ndarray) -> None:
    tar = np.linspace(0.2, 1.0, far.size)
    tar_at_far = {1e-4: 0.4, 1e-3: 0.55, 1e-2: 0.7}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = save_roc_figure(far, tar, tar_at_far, tmp_path / "roc" / "roc.png")
    _assert_real_png(path)


def test_roc_figure_skips_unreachable_targets(tmp_path: Path) -> None:
    far, tar = np.array([0.0, 0.5, 1.0]), np.array([0.5, 0.8, 1.0])
    path = save_roc_figure(far, tar, {1e-4: float("nan"), 1e-2: 0.5}, tmp_path / "roc.png")
    _assert_real_png(path)


def test_histogram_density_has_unit_area() -> None:
    edges = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(histogram_density(edges, np.array([2, 2])), [0.5, 0.25])
    np.testing.assert_array_equal(histogram_density(edges, np.array([0, 0])), [0.0, 0.0])


def test_distance_histogram_is_a_png(tmp_path: Path) -> None:
    edges = np.linspace(0.0, 2.0, 51)
    rng = np.random.default_rng(2)
    genuine, _ = np.histogram(rng.normal(0.6, 0.15, 500), bins=edges)
    impostor, _ = np.histogram(rng.normal(1.2, 0.2, 50_000), bins=edges)
    path = save_distance_histogram(edges, genuine, impostor, tmp_path / "hist" / "dist.png")
    _assert_real_png(path)


def test_distance_histogram_rejects_mismatched_counts(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="impostor_counts"):
        save_distance_histogram(np.linspace(0, 1, 5), np.zeros(4), np.zeros(5), tmp_path / "h.png")
