"""CMC / mAP / mINP against hand-worked cases and a naive per-query loop (stable argsort)."""

import itertools

import numpy as np
import pytest

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.ranking import RankingAccumulator, evaluate_ranking


def naive_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """The textbook loop: sort each row, drop junk, read the 0/1 match vector."""
    cmc, aps, inps, valid = [], [], [], []
    for i in range(len(distmat)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        matches = (g_pids[order][keep] == q_pids[i]).astype(np.float64)
        if not matches.any():
            continue
        valid.append(i)
        hits = np.cumsum(matches)
        first = int(np.argmax(matches)) + 1
        cmc.append([float(first <= k) for k in range(1, max_rank + 1)])
        aps.append((hits / np.arange(1, len(matches) + 1) * matches).sum() / matches.sum())
        last = int(np.flatnonzero(matches)[-1])
        inps.append(hits[last] / (last + 1))
    return np.mean(cmc, axis=0), np.array(aps), np.array(inps), np.array(valid)


def random_case(rng, *, ties):
    num_q, num_g = int(rng.integers(1, 40)), int(rng.integers(1, 70))
    num_ids, num_cams = int(rng.integers(1, 9)), int(rng.integers(1, 4))
    # Gallery ids beyond the query ids are distractors; some query ids have no gallery item.
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids + 3, num_g)
    q_camids, g_camids = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    if ties:  # integers (with negatives and -0.0) give many exact ties
        distmat = rng.integers(-2, 4, (num_q, num_g)).astype(np.float32)
        distmat[distmat == 0] *= np.where(rng.random(int((distmat == 0).sum())) < 0.5, -1, 1)
    else:
        distmat = rng.standard_normal((num_q, num_g)).astype(np.float32)
    return distmat, q_pids, g_pids, q_camids, g_camids


def assert_matches_naive(result, expected):
    cmc, aps, inps, valid = expected
    np.testing.assert_array_equal(result.valid_queries, valid)
    np.testing.assert_allclose(result.cmc, cmc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.average_precision, aps, rtol=1e-12)
    np.testing.assert_allclose(result.inverse_negative_penalty, inps, rtol=1e-12)


def test_reference_toy_case_with_max_rank_beyond_the_gallery():
    # notes §3.2: the first gallery item is junk, the kept matches are [0, 1, 0, 1].
    distmat = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    result = evaluate_ranking(
        distmat,
        np.array([1]),
        np.array([1, 3, 1, 2, 1]),
        np.array([0]),
        np.array([0, 1, 1, 1, 1]),
        max_rank=8,
    )
    assert result.mAP == pytest.approx(0.5)  # (1/2 + 2/4) / 2
    assert result.mINP == pytest.approx(0.5)  # 2 matches / rank 4
    np.testing.assert_array_equal(result.cmc, [0, 1, 1, 1, 1, 1, 1, 1])
    assert result.rank(1) == 0.0 and result.rank(8) == 1.0
    assert (result.num_valid_queries, result.num_skipped_queries) == (1, 0)


def test_ties_follow_gallery_order_and_unmatched_queries_are_skipped():
    # All distances equal: the kept order is the gallery order.
    distmat = np.zeros((3, 4), dtype=np.float32)
    distmat[2] = [1.0, -0.0, 0.0, 1.0]  # -0.0 and 0.0 tie; the match at index 3 is last
    q_pids, q_camids = np.array([1, 9, 1]), np.array([0, 0, 0])
    g_pids, g_camids = np.array([2, 1, 2, 1]), np.array([1, 1, 1, 1])
    result = evaluate_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=3)
    np.testing.assert_array_equal(result.valid_queries, [0, 2])
    # Query 0: matches at ranks 2 and 4 → AP (1/2 + 2/4)/2, INP 2/4, first match at rank 2.
    # Query 2: order 1(-0.0), 2(0.0), 0(1.0), 3(1.0) → matches at ranks 1 and 4.
    np.testing.assert_allclose(result.average_precision, [0.5, (1 + 2 / 4) / 2])
    np.testing.assert_allclose(result.inverse_negative_penalty, [0.5, 0.5])
    np.testing.assert_allclose(result.cmc, [0.5, 1.0, 1.0])
    assert result.num_skipped_queries == 1


@pytest.mark.parametrize("ties", [False, True])
def test_random_cases_agree_with_the_naive_loop(ties):
    rng = np.random.default_rng(7 + ties)
    checked = 0
    for _ in range(150):
        case = random_case(rng, ties=ties)
        max_rank = int(rng.integers(1, 90))  # often beyond the gallery
        if not _any_match(*case):
            with pytest.raises(EvaluationError, match="skipped"):
                evaluate_ranking(*case, max_rank=max_rank)
            continue
        result = evaluate_ranking(*case, max_rank=max_rank)
        assert_matches_naive(result, naive_ranking(*case, max_rank=max_rank))
        checked += 1
    assert checked > 80


def _any_match(distmat, q_pids, g_pids, q_camids, g_camids):
    same = q_pids[:, None] == g_pids[None, :]
    return bool((same & (q_camids[:, None] != g_camids[None, :])).any())


def test_many_rows_cross_chunk_boundaries():
    # More rows than one internal chunk, so rows are ranked in several threads.
    rng = np.random.default_rng(3)
    q_pids, g_pids = rng.integers(0, 40, 700), rng.integers(0, 50, 300)
    q_camids, g_camids = rng.integers(0, 3, 700), rng.integers(0, 3, 300)
    distmat = rng.integers(0, 50, (700, 300)).astype(np.float32)
    case = (distmat, q_pids, g_pids, q_camids, g_camids)
    assert_matches_naive(evaluate_ranking(*case, max_rank=20), naive_ranking(*case, max_rank=20))


@pytest.mark.parametrize("protocol", ["market1501", "cuhk03_single_shot"])
def test_chunked_accumulator_equals_one_shot(protocol):
    rng = np.random.default_rng(11)
    distmat, q_pids, g_pids, q_camids, g_camids = random_case(rng, ties=True)
    while not _any_match(distmat, q_pids, g_pids, q_camids, g_camids):
        distmat, q_pids, g_pids, q_camids, g_camids = random_case(rng, ties=True)
    whole = evaluate_ranking(
        distmat, q_pids, g_pids, q_camids, g_camids, max_rank=30, protocol=protocol, seed=4
    )
    accumulator = RankingAccumulator(g_pids, g_camids, max_rank=30, protocol=protocol, seed=4)
    cuts = np.sort(rng.integers(0, len(q_pids) + 1, 3))
    for rows in np.split(np.arange(len(q_pids)), cuts):  # chunks of any size, empty ones too
        accumulator.add(distmat[rows], q_pids[rows], q_camids[rows])
    chunked = accumulator.result()
    np.testing.assert_array_equal(chunked.valid_queries, whole.valid_queries)
    np.testing.assert_allclose(chunked.cmc, whole.cmc, rtol=1e-12)
    np.testing.assert_array_equal(chunked.average_precision, whole.average_precision)
    np.testing.assert_array_equal(chunked.inverse_negative_penalty, whole.inverse_negative_penalty)
    assert chunked.num_queries == len(q_pids)


def naive_single_shot_cmc(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, repeats, seed):
    """torchreid's eval_cuhk03 loop, drawing with the rule documented in ranking_cuhk03."""
    rng = np.random.default_rng(seed)
    pids = np.unique(g_pids)
    other, own = rng.random((repeats, len(pids))), rng.random((repeats, len(pids)))
    cmc = []
    for i in range(len(distmat)):
        valid = np.flatnonzero((g_pids == q_pids[i]) & (g_camids != q_camids[i]))
        if len(valid) == 0:
            continue
        curve = np.zeros(max_rank)
        for r in range(repeats):
            chosen = []
            for p, pid in enumerate(pids):
                pool, u = (
                    (valid, own) if pid == q_pids[i] else (np.flatnonzero(g_pids == pid), other)
                )
                chosen.append(pool[int(u[r, p] * len(pool))])
            chosen = np.sort(chosen)  # gallery order, then a stable sort by distance
            listed = chosen[np.argsort(distmat[i, chosen], kind="stable")]
            first = int(np.flatnonzero(g_pids[listed] == q_pids[i])[0]) + 1
            curve += np.arange(1, max_rank + 1) >= first
        cmc.append(curve / repeats)
    return np.mean(cmc, axis=0)


def test_single_shot_agrees_with_a_naive_loop_using_the_same_draws():
    rng = np.random.default_rng(5)
    for _ in range(20):
        case = random_case(rng, ties=bool(rng.integers(2)))
        if not _any_match(*case):
            continue
        result = evaluate_ranking(
            *case, max_rank=12, protocol="cuhk03_single_shot", cuhk03_repeats=7, seed=3
        )
        expected = naive_single_shot_cmc(*case, max_rank=12, repeats=7, seed=3)
        np.testing.assert_allclose(result.cmc, expected, atol=1e-12)
        # AP and INP are read from the full kept list, as in market1501.
        market = naive_ranking(*case, max_rank=1)
        np.testing.assert_allclose(result.average_precision, market[1], rtol=1e-12)
        np.testing.assert_allclose(result.inverse_negative_penalty, market[2], rtol=1e-12)


def test_single_shot_equals_market_when_every_identity_has_one_image():
    # The queries have one valid match (and a junk image) and every other identity one image:
    # nothing is left to sample, so the CMC is the market1501 CMC. Query 2's id is absent.
    rng = np.random.default_rng(2)
    g_pids, g_camids = np.array([0, 1, 2, 3, 4, 0]), np.array([1, 1, 1, 1, 1, 0])
    q_pids, q_camids = np.array([0, 0, 5, 0]), np.array([0, 0, 0, 0])
    distmat = rng.standard_normal((4, 6)).astype(np.float32)
    single = evaluate_ranking(
        distmat, q_pids, g_pids, q_camids, g_camids, max_rank=9, protocol="cuhk03_single_shot"
    )
    market = evaluate_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=9)
    np.testing.assert_array_equal(single.valid_queries, [0, 1, 3])
    np.testing.assert_allclose(single.cmc, market.cmc)


def test_single_shot_cmc_converges_to_its_exact_expectation():
    # Enumerate every draw (one image per identity) for one query; many repeats must approach it.
    g_pids = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    g_camids = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    distmat = np.array([[0.1, 0.5, 0.9, 0.2, 0.6, 0.3, 0.4, 0.8]], dtype=np.float32)
    pools = [[1, 2], [3, 4], [5, 6, 7]]  # query pid 0, camera 0: index 0 is junk
    ranks = [
        1 + sum(distmat[0, o] < distmat[0, pick[0]] for o in pick[1:])
        for pick in itertools.product(*pools)
    ]
    exact = [np.mean([r <= k for r in ranks]) for k in (1, 2, 3)]
    result = evaluate_ranking(
        distmat,
        np.array([0]),
        g_pids,
        np.array([0]),
        g_camids,
        max_rank=3,
        protocol="cuhk03_single_shot",
        cuhk03_repeats=5000,
        seed=1,
    )
    np.testing.assert_allclose(result.cmc, exact, atol=0.03)  # σ < 0.008
    assert result.cmc[0] < 0.5  # multi-shot rank-1 is 0: a sampled list differs from the full one


@pytest.mark.parametrize(
    ("distmat", "q_pids", "g_pids", "message"),
    [
        (np.zeros((2, 3)), np.array([1]), np.array([1, 2, 3]), "q_pids"),
        (np.zeros((2, 3)), np.array([1, 2]), np.array([1, 2]), "g_pids"),
        (np.zeros(3), np.array([1]), np.array([1, 2, 3]), "distmat"),
    ],
)
def test_mismatched_shapes_name_the_array(distmat, q_pids, g_pids, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate_ranking(distmat, q_pids, g_pids, np.zeros(len(q_pids)), np.zeros(len(g_pids)))


def test_invalid_inputs_raise_evaluation_errors():
    g_pids, g_camids = np.array([1, 1, 2]), np.array([0, 1, 0])
    with pytest.raises(EvaluationError, match="All 2 queries were skipped"):
        evaluate_ranking(np.zeros((2, 3)), np.array([2, 3]), g_pids, np.array([0, 0]), g_camids)
    with pytest.raises(EvaluationError, match="g_camids"):
        evaluate_ranking(np.zeros((1, 3)), np.array([1]), g_pids, np.array([0]), g_camids[:2])
    with pytest.raises(EvaluationError, match="NaN"):
        evaluate_ranking(np.full((1, 3), np.nan), np.array([1]), g_pids, np.array([0]), g_camids)
    with pytest.raises(EvaluationError, match="max_rank"):
        evaluate_ranking(
            np.zeros((1, 3)), np.array([1]), g_pids, np.array([0]), g_camids, max_rank=0
        )
    with pytest.raises(EvaluationError, match="All 1 queries were skipped"):
        evaluate_ranking(np.zeros((1, 0)), np.array([1]), g_pids[:0], np.array([0]), g_camids[:0])
    accumulator = RankingAccumulator(g_pids, g_camids)
    with pytest.raises(EvaluationError, match="gallery has 3 items"):
        accumulator.add(np.zeros((1, 4)), np.array([1]), np.array([0]))
    with pytest.raises(EvaluationError, match="No query"):
        accumulator.result()
    result = evaluate_ranking(np.zeros((1, 3)), np.array([1]), g_pids, np.array([0]), g_camids)
    with pytest.raises(EvaluationError, match="rank 51"):
        result.rank(51)
