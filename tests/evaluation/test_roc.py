"""evaluate_roc against a hand-worked case, a by-definition oracle, sklearn and np.histogram."""

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from reid_platform.errors import EvaluationError
from reid_platform.evaluation import roc
from reid_platform.evaluation.roc import evaluate_roc


def pair_lists(distmat, q_pids, g_pids, q_camids, g_camids):
    """Sorted genuine and impostor distances, pair by pair (the convention, spelled out)."""
    genuine, impostor = [], []
    for i in range(len(q_pids)):
        for j in range(len(g_pids)):
            if q_pids[i] != g_pids[j]:
                impostor.append(distmat[i, j])
            elif q_camids[i] != g_camids[j]:
                genuine.append(distmat[i, j])
    return np.sort(np.array(genuine)), np.sort(np.array(impostor))


def rates(genuine, impostor, threshold):
    """(FAR, TAR) when pairs with distance ≤ threshold are accepted."""
    far = np.count_nonzero(impostor <= threshold) / len(impostor)
    return far, np.count_nonzero(genuine <= threshold) / len(genuine)


def naive_tar_at_far(genuine, impostor, far_target):
    """The largest TAR over every threshold that matters (each distance, and below them all)."""
    every = [rates(genuine, impostor, t) for t in np.concatenate([[-np.inf], genuine, impostor])]
    return max(tar for far, tar in every if far <= far_target)


def random_case(seed, kind, dtype=np.float32, q=9, g=40):
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, 5, q), rng.integers(0, 5, g)
    q_camids, g_camids = rng.integers(0, 3, q), rng.integers(0, 3, g)
    if kind == "continuous":
        distmat = rng.random((q, g))
    elif kind == "grid":  # many ties, between genuine and impostor pairs too
        distmat = rng.integers(0, 6, (q, g)) / 4
    else:  # "ulps": distances a few float32 steps apart
        distmat = 0.3 + rng.integers(0, 4, (q, g)) * 3e-8
    return distmat.astype(dtype), q_pids, g_pids, q_camids, g_camids


# Queries (pid, camera): q0 (1, 0), q1 (2, 1); gallery g0 (1, 1), g1 (1, 0), g2 (2, 0), g3 (3, 1).
TOY = (
    np.array([[0.1, 0.05, 0.4, 0.3], [0.5, 0.2, 0.2, 0.6]], dtype=np.float32),
    np.array([1, 2]),
    np.array([1, 1, 2, 3]),
    np.array([0, 1]),
    np.array([1, 0, 0, 1]),
)


def test_hand_worked_toy_case():
    # Genuine: q0-g0 0.1, q1-g2 0.2. Excluded: q0-g1 (same pid and camera).
    # Impostor: q0-g2 0.4, q0-g3 0.3, q1-g0 0.5, q1-g1 0.2, q1-g3 0.6.
    # t < 0.1: (FAR, TAR) = (0, 0); [0.1, 0.2): (0, 1/2); [0.2, 0.3): (1/5, 1) since the tie at
    # 0.2 accepts a genuine and an impostor pair together; [0.3, 0.4): (2/5, 1); ...; ≥ 0.6: (1, 1).
    result = evaluate_roc(*TOY, far_targets=(0.0, 0.1, 0.19, 0.2, 0.5, 1.0), histogram_bins=5)
    assert (result.num_genuine, result.num_impostor) == (2, 5)
    assert result.tar_at_far == {0.0: 0.5, 0.1: 0.5, 0.19: 0.5, 0.2: 1.0, 0.5: 1.0, 1.0: 1.0}
    assert result.threshold_at_far[0.0] == np.nextafter(np.float32(0.2), np.float32(0))
    assert result.threshold_at_far[0.2] == np.nextafter(np.float32(0.3), np.float32(0))
    points = set(zip(result.far.tolist(), result.tar.tolist(), strict=True))
    assert {(0.0, 0.0), (0.0, 0.5), (0.2, 1.0), (0.4, 1.0), (1.0, 1.0)} <= points
    hand = {0.05: (0, 0), 0.1: (0, 0.5), 0.2: (0.2, 1), 0.3: (0.4, 1), 0.45: (0.6, 1), 0.6: (1, 1)}
    for threshold, expected in hand.items():
        accepted_far = np.count_nonzero(np.float32([0.4, 0.3, 0.5, 0.2, 0.6]) <= threshold) / 5
        accepted_tar = np.count_nonzero(np.float32([0.1, 0.2]) <= threshold) / 2
        assert (accepted_far, accepted_tar) == expected
    assert result.bin_edges[0] == np.float32(0.05) and result.bin_edges[-1] == np.float32(0.6)
    assert result.genuine_counts.sum() == 2 and result.impostor_counts.sum() == 5


@pytest.mark.parametrize("kind", ["continuous", "grid", "ulps"])
@pytest.mark.parametrize("fine_bins", [65536, 5, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_the_definition_on_random_cases(kind, fine_bins, dtype, monkeypatch):
    # Few fine buckets put many distances in each, exercising the exact in-bucket selection.
    monkeypatch.setattr(roc, "_MIN_FINE_BINS", fine_bins)
    targets = (0.0, 0.02, 0.1, 0.25, 0.5, 1.0)
    for seed in range(8):
        case = random_case(seed, kind, dtype)
        genuine, impostor = pair_lists(*case)
        if len(genuine) == 0:
            continue
        result = evaluate_roc(*case, far_targets=targets, histogram_bins=3, curve_points=50)
        assert (result.num_genuine, result.num_impostor) == (len(genuine), len(impostor))
        for far in targets:
            assert result.tar_at_far[far] == naive_tar_at_far(genuine, impostor, far), (seed, far)
            threshold = result.threshold_at_far[far]
            assert rates(genuine, impostor, threshold)[0] <= far
            assert rates(genuine, impostor, threshold)[1] == result.tar_at_far[far]
        for far, tar, threshold in zip(result.far, result.tar, result.thresholds, strict=True):
            assert (far, tar) == rates(genuine, impostor, threshold), seed


def test_curve_shape_and_size():
    result = evaluate_roc(*random_case(0, "continuous", q=40, g=300), curve_points=20)
    assert (result.far[0], result.tar[0]) == (0.0, 0.0)
    assert (result.far[-1], result.tar[-1]) == (1.0, 1.0)
    assert np.all(np.diff(result.far) >= 0) and np.all(np.diff(result.tar) >= 0)
    assert np.all(np.diff(result.thresholds) > 0)
    assert len(result.far) <= 3 * 20 + 5
    assert result.thresholds.dtype == np.float32 and result.far.dtype == np.float64


def test_curve_agrees_with_sklearn_roc_curve():
    rng = np.random.default_rng(3)
    q_feats, g_feats = rng.standard_normal((30, 8)), rng.standard_normal((250, 8))
    q_pids, g_pids = rng.integers(0, 10, 30), rng.integers(0, 10, 250)
    g_feats += np.eye(10, 8)[g_pids] * 2  # same-id pairs closer
    q_feats += np.eye(10, 8)[q_pids] * 2
    distmat = np.linalg.norm(q_feats[:, None] - g_feats[None], axis=2).astype(np.float32)
    case = (distmat, q_pids, g_pids, rng.integers(0, 3, 30), rng.integers(0, 3, 250))
    genuine, impostor = pair_lists(*case)
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    fpr, tpr, score_thresholds = roc_curve(
        labels, -np.concatenate([genuine, impostor]), drop_intermediate=False
    )
    result = evaluate_roc(*case)
    # sklearn's point j accepts distances ≤ −score_thresholds[j] (the first accepts none).
    j = np.searchsorted(-score_thresholds, result.thresholds, side="right") - 1
    np.testing.assert_allclose(result.far, fpr[j], rtol=0, atol=1e-15)
    np.testing.assert_allclose(result.tar, tpr[j], rtol=0, atol=1e-15)
    for far, tar in result.tar_at_far.items():
        assert tar == pytest.approx(tpr[fpr <= far].max(), abs=1e-15)


@pytest.mark.parametrize("kind", ["continuous", "grid"])
@pytest.mark.parametrize("bins", [1, 4, 100])
def test_histograms_match_np_histogram(kind, bins):
    case = random_case(5, kind, q=30, g=120)
    genuine, impostor = pair_lists(*case)
    result = evaluate_roc(*case, histogram_bins=bins)
    assert result.bin_edges.shape == (bins + 1,)
    assert result.bin_edges[0] == case[0].min() and result.bin_edges[-1] == case[0].max()
    np.testing.assert_array_equal(result.genuine_counts, np.histogram(genuine, result.bin_edges)[0])
    np.testing.assert_array_equal(
        result.impostor_counts, np.histogram(impostor, result.bin_edges)[0]
    )


def test_chunking_threads_and_layout_do_not_change_the_result(monkeypatch):
    case = random_case(7, "grid", q=50, g=90)
    expected = evaluate_roc(*case)
    # Chunks of one row, larger than the reused buffers; a Fortran-ordered and a float16 input.
    monkeypatch.setattr(roc, "_CHUNK_ELEMENTS", 64)
    for distmat in (case[0], np.asfortranarray(case[0])):
        result = evaluate_roc(distmat, *case[1:])
        assert result.tar_at_far == expected.tar_at_far
        np.testing.assert_array_equal(result.thresholds, expected.thresholds)
        np.testing.assert_array_equal(result.impostor_counts, expected.impostor_counts)
    half = evaluate_roc(case[0].astype(np.float16), *case[1:])
    assert half.tar_at_far == expected.tar_at_far  # the grid values are exact in float16
    late_nan = case[0].copy()
    late_nan[-1, -1] = np.nan  # in the last chunk, not the first
    with pytest.raises(EvaluationError, match="NaN"):
        evaluate_roc(late_nan, *case[1:])


def test_all_distances_equal():
    distmat = np.full((3, 4), 0.7, dtype=np.float32)
    result = evaluate_roc(
        distmat, np.array([1, 2, 3]), np.array([1, 2, 4, 5]), np.zeros(3), np.ones(4)
    )
    assert result.tar_at_far == {1e-4: 0.0, 1e-3: 0.0, 1e-2: 0.0}
    assert (result.far[-1], result.tar[-1]) == (1.0, 1.0)
    assert result.genuine_counts.sum() == 2 and result.impostor_counts.sum() == 10


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        ({"q_pids": np.array([1, 2, 3])}, "q_pids"),
        ({"g_camids": np.array([0, 1])}, "g_camids"),
        ({"distmat": np.zeros(4)}, "2-D"),
        ({"q_pids": np.array([7, 8])}, "No genuine pair"),
        ({"g_camids": np.zeros(4, np.int64), "q_camids": np.zeros(2, np.int64)}, "No genuine"),
        ({"g_pids": np.array([1, 1, 1, 1]), "q_pids": np.array([1, 1])}, "No impostor pair"),
        ({"distmat": np.array([[0.1, np.nan, 0.4, 0.3], [0.5, 0.2, 0.2, 0.6]])}, "NaN"),
        ({"far_targets": (0.1, 1.5)}, "far_targets"),
        ({"histogram_bins": 0}, "histogram_bins"),
    ],
)
def test_errors_name_the_culprit(change, culprit):
    arguments = dict(zip(["distmat", "q_pids", "g_pids", "q_camids", "g_camids"], TOY, strict=True))
    arguments.update(change)
    with pytest.raises(EvaluationError, match=culprit) as error:
        evaluate_roc(**arguments)
    assert str(error.value).count(". ") == 0  # one sentence
