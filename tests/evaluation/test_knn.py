"""Exact neighbour search against a dense argsort, on the brute-force and low-rank paths."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType

import numpy as np
import pytest
import torch

from reid_platform.errors import EvaluationError
from reid_platform.evaluation import kernel_pool as kernel_pool_module
from reid_platform.evaluation import (
    knn,
    knn_strip_maxima,
    knn_symmetric_search,
    rerank_projected_search,
)
from reid_platform.evaluation.kernel_pool import POOL_WORKERS
from reid_platform.evaluation.knn import (
    Neighbours,
    merge_neighbours,
    nearest_neighbours,
    neighbours_from_distances,
)
from reid_platform.evaluation.knn_symmetric_search import symmetric_search
from reid_platform.evaluation.rerank_pairs import inner_products_by_index
from reid_platform.evaluation.rerank_projected_search import projected_search
from reid_platform.evaluation.rerank_scores import ScoreSpace

METRICS = ["cosine", "euclidean", "euclidean_squared"]


def _no_kernel_pool(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> None:
    """`module` computes as on a host without a kernel pool."""

    @contextmanager
    def no_pool() -> Iterator[None]:
        yield None

    monkeypatch.setattr(module, "kernel_pool", no_pool)


def _dense(features: np.ndarray, metric: str) -> np.ndarray:
    """(n, n) float64 distances, the textbook way."""
    x = features.astype(np.float64)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
        return 1.0 - x @ x.T
    norms = (x**2).sum(1)
    squared = np.maximum(norms[:, None] + norms[None, :] - 2.0 * x @ x.T, 0.0)
    return squared if metric == "euclidean_squared" else np.sqrt(squared)


def _check(neighbours: Neighbours, features: np.ndarray, metric: str, k: int) -> None:
    dense = _dense(features, metric)
    expected = np.argsort(dense, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(neighbours.indices, expected)
    picked = np.take_along_axis(dense, expected, axis=1)
    # Euclidean distances near 0 are square roots of rounding noise: compare their squares.
    power = 2 if metric == "euclidean" else 1
    scale = float(np.abs(dense).max()) ** power
    got = neighbours.distances.astype(np.float64) ** power
    np.testing.assert_allclose(got, picked**power, atol=1e-5 * scale)
    if neighbours.farthest is not None:
        farthest = neighbours.farthest.astype(np.float64) ** power
        np.testing.assert_allclose(farthest, dense.max(1) ** power, atol=1e-5 * scale)


def _low_rank(n: int, dim: int, rank: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, dim))
    return (latent + noise * rng.standard_normal((n, dim)) + 3.0).astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
def test_small_brute_force_matches_argsort(metric: str) -> None:
    features = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    _check(nearest_neighbours(features, 7, metric=metric, farthest=True), features, metric, 7)  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", METRICS)
def test_low_rank_search_certifies_and_matches_argsort(metric: str) -> None:
    features = _low_rank(420, 512, 24, 0.02, seed=1)
    space = ScoreSpace(features, metric)  # type: ignore[arg-type]
    _, _, _, failed = projected_search(space, 11, farthest=True)
    assert len(failed) < 0.2 * len(features)  # the low-rank path really answered most rows
    neighbours = nearest_neighbours(features, 11, metric=metric, farthest=True)  # type: ignore[arg-type]
    _check(neighbours, features, metric, 11)


def test_full_rank_data_falls_back_to_brute_force() -> None:
    features = np.random.default_rng(2).standard_normal((400, 512)).astype(np.float32)
    space = ScoreSpace(features, "euclidean")
    _, _, _, failed = projected_search(space, 5, farthest=True)
    assert len(failed) > 0.5 * len(features)  # isotropic noise: bounds too loose to certify
    _check(
        nearest_neighbours(features, 5, metric="euclidean", farthest=True), features, "euclidean", 5
    )


@pytest.mark.parametrize("metric", ["euclidean", "euclidean_squared"])
def test_ties_are_ordered_by_index(metric: str) -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 3, (20, 4))
    features = base[rng.integers(0, 20, 60)].astype(np.float32)  # duplicates and tied distances
    _check(nearest_neighbours(features, 9, metric=metric, farthest=True), features, metric, 9)  # type: ignore[arg-type]


def test_ties_in_a_low_rank_search() -> None:
    features = _low_rank(300, 512, 16, 0.0, seed=4)
    features = np.round(features)[np.random.default_rng(4).integers(0, 300, 420)]
    _check(
        nearest_neighbours(features, 6, metric="euclidean_squared"),
        features,
        "euclidean_squared",
        6,
    )


def test_k_is_capped_at_the_number_of_rows() -> None:
    features = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    neighbours = nearest_neighbours(features, 10, metric="euclidean")
    assert neighbours.indices.shape == (4, 4)
    _check(neighbours, features, "euclidean", 4)


def test_from_distances_and_merge() -> None:
    rng = np.random.default_rng(6)
    distances = rng.integers(0, 5, (7, 12)).astype(np.float32)  # many ties
    whole = neighbours_from_distances(distances, 5)
    np.testing.assert_array_equal(whole.indices, np.argsort(distances, 1, kind="stable")[:, :5])
    left = neighbours_from_distances(distances[:, :6], 5)
    right = neighbours_from_distances(distances[:, 6:], 5)
    right = Neighbours(right.indices + 6, right.distances, right.farthest)
    merged = merge_neighbours(left, right, 5)
    np.testing.assert_array_equal(merged.indices, whole.indices)
    assert merged.farthest is not None
    np.testing.assert_array_equal(merged.farthest, distances.max(1))


@pytest.mark.parametrize("pooled", [True, False])
@pytest.mark.parametrize("stored_entries", [1 << 26, 90 * 400, 0])
def test_bounds_reused_by_symmetry_equal_the_full_product(
    stored_entries: int, pooled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candidates from the half-stored, half-transposed bounds (all rows split at n/2, at a
    smaller split, or none) equal a top-k over the whole bound matrix left @ rightᵀ, with the
    row blocks as tasks of a kernel pool (the rows past the split after those before) or not."""
    if not pooled:
        _no_kernel_pool(monkeypatch, rerank_projected_search)
    else:
        monkeypatch.setattr(kernel_pool_module, "_host_threads", lambda: POOL_WORKERS)
    features = _low_rank(500, 512, 24, 0.05, seed=8)
    space = ScoreSpace(features, "euclidean")  # biases: the transposed half must swap them
    left, right, _ = rerank_projected_search._bound_factors(space, 256)
    monkeypatch.setattr(rerank_projected_search, "BLOCK_ENTRIES", 64 * 500)  # several blocks
    monkeypatch.setattr(rerank_projected_search, "STORED_BOUND_ENTRIES", stored_entries)
    got = rerank_projected_search._candidates(left, right, space.bias, 30, 5)
    full = (left.double() @ right.double().T).numpy()
    order = np.argsort(-full, axis=1, kind="stable")
    scale = float(np.abs(full).max())
    np.testing.assert_allclose(got[1], np.take_along_axis(full, got[0], 1), atol=1e-5 * scale)
    np.testing.assert_allclose(
        got[1], np.take_along_axis(full, order[:, :30], 1), atol=1e-5 * scale
    )
    np.testing.assert_allclose(got[3], np.take_along_axis(full, got[2], 1), atol=1e-5 * scale)
    smallest = np.sort(full, axis=1)[:, :5]
    np.testing.assert_allclose(got[3], smallest, atol=1e-5 * scale)


@pytest.mark.parametrize("metric", METRICS)
def test_a_space_of_stacked_blocks_equals_one_of_the_stack(metric: str) -> None:
    rng = np.random.default_rng(9)
    first, second = rng.standard_normal((30, 8)), rng.standard_normal((50, 8)).astype(np.float32)
    kept = first.copy(), second.copy()
    stacked = ScoreSpace((first, second), metric)  # type: ignore[arg-type]
    whole = ScoreSpace(np.concatenate([first, second]).astype(np.float32), metric)  # type: ignore[arg-type]
    torch.testing.assert_close(stacked.z, whole.z)
    torch.testing.assert_close(stacked.bias, whole.bias)
    np.testing.assert_array_equal(first, kept[0])  # the inputs are never changed in place
    np.testing.assert_array_equal(second, kept[1])
    ScoreSpace(second, metric)  # type: ignore[arg-type]
    np.testing.assert_array_equal(second, kept[1])
    part = stacked.part(slice(30, None))
    torch.testing.assert_close(part.z, whole.z[30:])
    # One float64 block: its float32 copy is the space's own, normalised or centred in place.
    converted = ScoreSpace(np.concatenate([first, second]), metric)  # type: ignore[arg-type]
    torch.testing.assert_close(converted.z, whole.z)


def test_blocks_of_different_widths_are_refused_with_their_shapes() -> None:
    with pytest.raises(EvaluationError, match=r"one dimension d.*\(3, 8\).*\(2, 7\)"):
        ScoreSpace((np.zeros((3, 8)), np.zeros((2, 7))), "cosine")
    with pytest.raises(EvaluationError, match="2-d"):
        ScoreSpace([], "cosine")


@pytest.fixture
def small_symmetric_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strips and chunks small enough that a few hundred rows use several of each (and the
    symmetric search applies to them), and no candidate budget: at this size k alone takes
    a good share of the columns, and the tests mean the candidate lists."""
    monkeypatch.setattr(knn_strip_maxima, "STRIP_ROWS", 48)
    monkeypatch.setattr(knn_strip_maxima, "CHUNK_COLUMNS", 96)
    monkeypatch.setattr(knn_symmetric_search, "CANDIDATE_BUDGET", 2.0)


SCHEDULES = ["pool", "inline", "no-overlap"]
"""How the symmetric search runs its strips: in the kernel pool (this 2-core host's default),
computed by the calling thread with a worker answering, or with each answer awaited."""


def _schedule(monkeypatch: pytest.MonkeyPatch, schedule: str) -> None:
    if schedule == "inline":
        _no_kernel_pool(monkeypatch, knn_symmetric_search)
    monkeypatch.setattr(knn_symmetric_search, "OVERLAP", schedule != "no-overlap")


@pytest.mark.usefixtures("small_symmetric_blocks")
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("metric", METRICS)
def test_symmetric_search_matches_argsort(
    metric: str, schedule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _schedule(monkeypatch, schedule)
    features = _low_rank(501, 512, 24, 0.02, seed=10)  # 501: a partial last group and strip
    assert symmetric_search(ScoreSpace(features, metric), 11) is not None  # type: ignore[arg-type]
    _check(nearest_neighbours(features, 11, metric=metric), features, metric, 11)  # type: ignore[arg-type]


@pytest.mark.usefixtures("small_symmetric_blocks")
@pytest.mark.parametrize("n", [389, 453])
def test_each_rows_groups_partition_the_columns(n: int) -> None:
    """389 = 8 strips + 5 rows, 453 = 9 strips + 21 rows: ragged last chunk, strip and group."""
    groups = -(-n // knn_strip_maxima.GROUP)
    rows, slots = np.repeat(np.arange(n), groups), np.tile(np.arange(groups), n)
    members = knn_strip_maxima.group_members(rows, slots, n).reshape(n, -1)
    for row in members:
        np.testing.assert_array_equal(np.sort(row[row >= 0]), np.arange(n))


def _strips(space: ScoreSpace, pool: ThreadPoolExecutor | None = None) -> tuple[list, np.ndarray]:
    """The strip maxima of the symmetric search, and the gap of its thresholds."""
    left, _, residual = rerank_projected_search._bound_factors(space, 256)
    bias = None if space.metric == "cosine" else space.bias.numpy()
    factors = left[:, :257].contiguous()
    strips = list(knn_symmetric_search.strip_maxima(factors, space.scale, bias, pool))
    return strips, 2.0 * space.scale * residual * float(residual.max())


@pytest.mark.usefixtures("small_symmetric_blocks")
@pytest.mark.parametrize("metric", METRICS)
def test_group_maxima_equal_those_of_the_full_bound_matrix(metric: str) -> None:
    """Read along rows and (for the strips' later rows) along columns of half the product."""
    n = 389
    space = ScoreSpace(_low_rank(n, 512, 16, 0.05, seed=11), metric)  # type: ignore[arg-type]
    left, right, _ = rerank_projected_search._bound_factors(space, 256)
    full = (left.double() @ right.double().T).numpy()
    strips, _ = _strips(space)
    got = np.concatenate([np.concatenate([lower.T, upper], 1) for _, upper, lower in strips])
    rows = np.repeat(np.arange(n), got.shape[1])
    members = knn_strip_maxima.group_members(rows, np.tile(np.arange(got.shape[1]), n), n)
    values = np.where(members >= 0, full[rows[:, None], members], -np.inf)
    expected = values.max(1).reshape(n, -1)
    np.testing.assert_allclose(got, expected, atol=1e-5 * float(np.abs(full).max()))


@pytest.mark.usefixtures("small_symmetric_blocks")
@pytest.mark.parametrize("metric", METRICS)
def test_pooled_strips_equal_those_computed_in_turn(metric: str) -> None:
    """With a pool a strip's chunks run concurrently, the next strip's queued before it is
    handed out: the same strips in the same order, and the same maxima bit for bit (each
    product entry is one dot product either way)."""
    space = ScoreSpace(_low_rank(389, 512, 16, 0.05, seed=11), metric)  # type: ignore[arg-type]
    in_turn, _ = _strips(space)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pooled, _ = _strips(space, pool)
    assert [rows for rows, _, _ in pooled] == [rows for rows, _, _ in in_turn]
    for (_, upper, lower), (_, upper_turn, lower_turn) in zip(pooled, in_turn, strict=True):
        np.testing.assert_array_equal(upper, upper_turn)
        np.testing.assert_array_equal(lower, lower_turn)


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_neighbours_found_only_across_strips_and_loose_bounds() -> None:
    """Rows 400-499 repeat rows 0-99 (slightly moved): each such pair is the other's nearest,
    read off a chunk to the right for the first and off that chunk's columns (an earlier
    strip) for the second. The isotropic part makes the bounds loose (10% of the energy
    outside the basis), so the candidate lists are long, yet the answer must be exact."""
    base = _low_rank(400, 512, 200, 7.0, seed=12)  # latent entries have a variance of 200
    moved = base[:100] + np.random.default_rng(12).standard_normal((100, 512)).astype(np.float32)
    features = np.concatenate([base, moved])
    space = ScoreSpace(features, "cosine")
    _, _, residual = rerank_projected_search._bound_factors(space, 256)
    assert 0.02 < float((residual**2).mean()) < rerank_projected_search.MAX_RESIDUAL_SHARE
    found = symmetric_search(space, 6)
    assert found is not None
    np.testing.assert_array_equal(found[0][:100, 1], np.arange(400, 500))
    np.testing.assert_array_equal(found[0][400:, 1], np.arange(100))
    _check(nearest_neighbours(features, 6, metric="cosine"), features, "cosine", 6)


@pytest.mark.usefixtures("small_symmetric_blocks")
@pytest.mark.parametrize("metric", METRICS)
def test_thresholds_never_exceed_the_kth_exact_score(metric: str) -> None:
    """τ is what makes the candidate lists complete: a row whose τ were above its k-th best
    score could lose a neighbour, so check it against the dense scores directly."""
    features = _low_rank(480, 512, 64, 0.3, seed=13)
    space = ScoreSpace(features, metric)  # type: ignore[arg-type]
    strips, gap = _strips(space)
    tau = np.concatenate(
        [knn_symmetric_search.thresholds(u, low, 9, gap[rows])[0] for rows, u, low in strips]
    )
    z = space.z.double()
    exact = (space.scale * z @ z.T - space.bias.double()[None, :]).numpy()
    kth = np.sort(exact, axis=1)[:, -9]
    assert (tau <= kth).all()
    assert (tau > kth - 0.5 * np.abs(kth).max()).all()  # and useful: not vacuously low


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_mutual_products_are_reused_bit_for_bit() -> None:
    """A pair computed for an earlier strip's row serves the later row: the same bits as
    computing it there (ties between such scores must break as in the exhaustive search)."""
    space = ScoreSpace(_low_rank(150, 512, 8, 0.5, seed=16), "cosine")
    z = space.z.numpy()
    mutual = knn_symmetric_search._MutualDots(space)
    rng = np.random.default_rng(16)
    for start in range(0, 150, 48):
        rows = slice(start, min(150, start + 48))
        cols = rng.integers(0, 150, (rows.stop - rows.start, 30))
        cols[:, 0] = 149 - np.arange(rows.start, rows.stop)  # mirrored pairs, both ways
        cols[:, -3:] = -1
        got = mutual.dots(rows, cols)
        expected = inner_products_by_index(z[rows], z, cols)
        np.testing.assert_array_equal(got, expected)
        assert (got[:, -3:] == -np.inf).all()
    assert not mutual.kept  # every strip took what the earlier ones kept for it


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_a_row_short_of_candidates_is_answered_by_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The safety net for rounding beyond the tolerance: a row whose list came back short."""
    features = _low_rank(300, 512, 16, 0.05, seed=17)

    def short_of_candidates(space: ScoreSpace, k: int) -> tuple[np.ndarray, np.ndarray]:
        result = symmetric_search(space, k)
        assert result is not None
        result[0][[3, 250], -1], result[1][[3, 250], -1] = -1, -np.inf
        return result

    monkeypatch.setattr(knn, "symmetric_search", short_of_candidates)
    _check(nearest_neighbours(features, 7, metric="euclidean"), features, "euclidean", 7)


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_ties_in_the_symmetric_search() -> None:
    features = _low_rank(300, 512, 16, 0.0, seed=14)
    features = np.round(features)[np.random.default_rng(14).integers(0, 300, 420)]
    assert symmetric_search(ScoreSpace(features, "euclidean_squared"), 6) is not None
    _check(
        nearest_neighbours(features, 6, metric="euclidean_squared"),
        features,
        "euclidean_squared",
        6,
    )


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_symmetric_search_declines_full_rank_and_small_cases() -> None:
    isotropic = np.random.default_rng(15).standard_normal((1200, 1024)).astype(np.float32)
    assert symmetric_search(ScoreSpace(isotropic, "cosine"), 5) is None
    _check(nearest_neighbours(isotropic, 5, metric="cosine"), isotropic, "cosine", 5)
    narrow = _low_rank(400, 300, 8, 0.01, seed=15)  # fewer than 2 × rank dimensions
    assert symmetric_search(ScoreSpace(narrow, "cosine"), 5) is None
    few = _low_rank(180, 512, 8, 0.01, seed=15)  # fewer than 4 strips of rows
    assert symmetric_search(ScoreSpace(few, "cosine"), 5) is None


def _collapsed(n: int, noise: float, seed: int) -> np.ndarray:
    """Features sharing one dominant direction (an untrained model's): every bound is loose."""
    rng = np.random.default_rng(seed)
    common = np.abs(rng.standard_normal(512))
    return (common + noise * rng.standard_normal((n, 512))).astype(np.float32)


def _argsort_neighbours(found: tuple[np.ndarray, np.ndarray], features: np.ndarray) -> None:
    """The symmetric search's cosine answer against a float64 argsort of the dense scores."""
    x = features.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dense = x @ x.T
    expected = np.argsort(-dense, axis=1, kind="stable")[:, : found[0].shape[1]]
    np.testing.assert_array_equal(found[0], expected)
    np.testing.assert_allclose(found[1], np.take_along_axis(dense, expected, 1), atol=1e-5)


def _count_strips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first row of each strip the symmetric search is handed, as it goes."""
    strips: list[int] = []
    strip_maxima = knn_symmetric_search.strip_maxima

    def counted(*args: object) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        for strip in strip_maxima(*args):  # type: ignore[arg-type]
            strips.append(strip[0].start)
            yield strip

    monkeypatch.setattr(knn_symmetric_search, "strip_maxima", counted)
    return strips


def _spy_brute_force(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of each brute-force call of the symmetric search, as it goes (with
    the module's budget)."""
    monkeypatch.setattr(knn_symmetric_search, "CANDIDATE_BUDGET", 1 / 8)
    calls: list[int] = []
    brute_force = knn_symmetric_search.brute_force_search

    def spy(space: ScoreSpace, rows: np.ndarray, k: int, *, farthest: bool) -> tuple:
        calls.append(len(rows))
        return brute_force(space, rows, k, farthest=farthest)

    monkeypatch.setattr(knn_symmetric_search, "brute_force_search", spy)
    return calls


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_loose_bounds_found_up_front_are_answered_by_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every column would be a candidate of every row (n² of them): the probe sees it first."""
    features = _collapsed(400, 1.0, seed=18)
    space = ScoreSpace(features, "cosine")
    _, _, residual = rerank_projected_search._bound_factors(space, 256)
    assert float((residual**2).mean()) < 0.05  # the residual gate alone lets them through
    calls = _spy_brute_force(monkeypatch)
    monkeypatch.setattr(knn_symmetric_search, "candidates", None)  # never reached
    found = symmetric_search(space, 6)
    assert found is not None and calls == [400]
    _argsort_neighbours(found, features)


@pytest.mark.usefixtures("small_symmetric_blocks")
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_strips_over_the_candidate_budget_are_answered_by_brute_force(
    schedule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the probe: each strip over the budget is answered by brute force, and once two are
    (most so far), all the rows left, without building a candidate list or their maxima."""
    _schedule(monkeypatch, schedule)
    monkeypatch.setattr(knn_symmetric_search, "_probe_share", lambda *_: 0.0)
    monkeypatch.setattr(knn_symmetric_search, "candidates", None)  # never reached
    strips = _count_strips(monkeypatch)
    calls = _spy_brute_force(monkeypatch)
    features = _collapsed(400, 1.0, seed=19)
    found = symmetric_search(ScoreSpace(features, "cosine"), 6)
    assert found is not None
    assert strips == [0, 48, 96] and calls == [48, 48, 400 - 96]
    _argsort_neighbours(found, features)


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_a_strip_short_of_k_candidates_is_padded_and_answered_by_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole strip whose lists come back shorter than k: padded (−1, −inf), then `knn`'s
    fallback answers those rows."""
    features = _low_rank(300, 512, 16, 0.05, seed=20)
    candidates = knn_symmetric_search.candidates

    def short(hits: tuple, tau: np.ndarray, factors: np.ndarray, space: ScoreSpace, rows: slice):
        cols = candidates(hits, tau, factors, space, rows)
        return cols[:, :2] if rows.start == 48 else cols

    monkeypatch.setattr(knn_symmetric_search, "candidates", short)
    found = symmetric_search(ScoreSpace(features, "euclidean"), 7)
    assert found is not None
    assert (found[0][48:96, 2:] == -1).all() and (found[1][48:96, 2:] == -np.inf).all()
    _check(nearest_neighbours(features, 7, metric="euclidean"), features, "euclidean", 7)


@pytest.mark.usefixtures("small_symmetric_blocks")
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nan_features_are_declined(metric: str) -> None:
    """A NaN makes every bound NaN: the search declines (no crash), and the NaN row's
    distances come back NaN, for the ranking to refuse."""
    features = _low_rank(300, 512, 16, 0.05, seed=21)
    features[7, 3] = np.nan
    assert symmetric_search(ScoreSpace(features, metric), 5) is None  # type: ignore[arg-type]
    neighbours = nearest_neighbours(features, 5, metric=metric)  # type: ignore[arg-type]
    assert not np.isfinite(neighbours.distances).all()


@pytest.mark.usefixtures("small_symmetric_blocks")
def test_an_error_in_a_strip_surfaces_before_the_next_strips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One strip in flight: strip 0's error is raised while strip 1 is the latest computed."""
    strips = _count_strips(monkeypatch)

    def failing(*args: object) -> np.ndarray:
        raise RuntimeError("strip failed")

    monkeypatch.setattr(knn_symmetric_search, "candidates", failing)
    with pytest.raises(RuntimeError, match="strip failed"):
        symmetric_search(ScoreSpace(_low_rank(400, 512, 16, 0.05, seed=22), "cosine"), 5)
    assert strips == [0, 48]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="CUDA"):
        nearest_neighbours(np.ones((3, 2), np.float32), 2, metric="cosine", device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_path_matches_argsort() -> None:
    features = _low_rank(300, 64, 8, 0.1, seed=7)
    neighbours = nearest_neighbours(features, 8, metric="euclidean", farthest=True, device="cuda")
    _check(neighbours, features, "euclidean", 8)
