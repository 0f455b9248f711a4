"""`reid metrics FILE.npz` on a hand-worked case, on features, and on bad files."""

import json
from pathlib import Path

import numpy as np
import pytest

from reid_platform.cli.main import main

# Two queries over four gallery images. q0 (pid 1, cam 0): g2 is junk (same pid and camera),
# its one match g0 comes third after g1 and g3 → AP = INP = 1/3, no rank-1 hit. q1 (pid 2,
# cam 0): its match g1 is nearest → AP = INP = 1. Genuine pairs: 0.4 and 0.05; impostors:
# 0.1, 0.3, 0.2, 0.9, 0.1 — at FAR ≤ 1e-2 of 5 impostors no impostor may be accepted, so the
# threshold stays below 0.1 and accepts one genuine pair of two.
HAND_CASE = {
    "distmat": np.array([[0.4, 0.1, 0.05, 0.3], [0.2, 0.05, 0.9, 0.1]], dtype=np.float32),
    "q_pids": np.array([1, 2]),
    "g_pids": np.array([1, 2, 1, 3]),
    "q_camids": np.array([0, 0]),
    "g_camids": np.array([1, 1, 0, 1]),
}
HAND_METRICS = {
    "rank1": 0.5,
    "rank5": 1.0,
    "rank10": 1.0,
    "mAP": 2 / 3,
    "mINP": 2 / 3,
    "tar_at_far_1e-4": 0.5,
    "tar_at_far_1e-3": 0.5,
    "tar_at_far_1e-2": 0.5,
    "num_valid_queries": 2,
}


def _run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    assert main(["metrics", *args, "--json"]) == 0
    result: dict[str, float] = json.loads(capsys.readouterr().out)
    return result


def test_distance_matrix_hand_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "case.npz"
    np.savez(path, **HAND_CASE)
    assert _run_json([str(path)], capsys) == pytest.approx(HAND_METRICS)


def test_features_use_the_chosen_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    q_feats = rng.standard_normal((6, 5)).astype(np.float32)
    g_feats = rng.standard_normal((20, 5)).astype(np.float32)
    ids = {
        "q_pids": np.arange(6) % 3,
        "g_pids": np.arange(20) % 4,
        "q_camids": np.zeros(6, dtype=np.int64),
        "g_camids": np.ones(20, dtype=np.int64),
    }
    distmat = ((q_feats[:, None, :] - g_feats[None, :, :]) ** 2).sum(-1)
    np.savez(tmp_path / "feats.npz", q_feats=q_feats, g_feats=g_feats, **ids)
    np.savez(tmp_path / "dist.npz", distmat=distmat, **ids)
    from_features = _run_json([str(tmp_path / "feats.npz"), "--metric", "sqeuclidean"], capsys)
    from_distances = _run_json([str(tmp_path / "dist.npz")], capsys)
    assert from_features == pytest.approx(from_distances, abs=1e-6)


def test_table_output_names_the_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "case.npz", **HAND_CASE)
    assert main(["metrics", str(tmp_path / "case.npz")]) == 0
    out = capsys.readouterr().out
    assert "mAP" in out and "66.67%" in out and "tar_at_far_1e-4" in out


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ({k: v for k, v in HAND_CASE.items() if k != "g_camids"}, [], "lacks g_camids"),
        ({**HAND_CASE, "distmat": HAND_CASE["distmat"][:, :3]}, [], "distmat has shape"),
        ({**HAND_CASE, "g_pids": np.array([1, 2, 1])}, [], "g_camids has 4 entries"),
        ({**HAND_CASE, "q_pids": np.array([1.0, 2.0])}, [], "q_pids must be a 1-d integer"),
        (HAND_CASE, ["--rerank"], "--rerank needs features"),
    ],
)
def test_bad_files_exit_with_one_sentence(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: dict[str, np.ndarray],
    extra: list[str],
    message: str,
) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **content)
    assert main(["metrics", str(path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_missing_and_corrupt_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", str(tmp_path / "absent.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "corrupt.npz").write_bytes(b"not a zip")
    assert main(["metrics", str(tmp_path / "corrupt.npz")]) == 2
    assert "is not a readable .npz file" in capsys.readouterr().err
