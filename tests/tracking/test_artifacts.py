"""The final checkpoint's files land on DESIGN.md's artifact layout in a real sqlite store."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.artifacts import log_final_artifacts
from reid_platform.tracking.run_artifacts import download_run_artifact, download_run_model
from reid_platform.tracking.runs import open_training_run

EXPECTED = {
    "checkpoints/model.pt",
    "roc/roc.png",
    "roc/roc.csv",
    "roc/distance_histogram.png",
    "ranklist/worst_1_q3.png",
    "ranklist/best_1_q0.png",
    "metrics/final.json",
}


def write_final_checkpoint(folder: Path) -> Path:
    """A final checkpoint folder as training writes it (contents are placeholders)."""
    files = {
        "state.pt": b"optimizer and rng",
        "model.pt": b"weights",
        "roc/roc.png": b"png",
        "roc/roc.csv": b"far,tar,threshold\n",
        "roc/distance_histogram.png": b"png",
        "ranklist/worst_1_q3.png": b"png",
        "ranklist/best_1_q0.png": b"png",
        "metrics.json": json.dumps({"eval/mAP": 0.5, "test/mAP": 0.4}).encode(),
    }
    for name, payload in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(payload)
    return folder


def stored_files(uri: str, run_id: str, folder: str | None = None) -> set[str]:
    """Every artifact file path of the run, walking folders."""
    found: set[str] = set()
    for entry in MlflowClient(uri).list_artifacts(run_id, folder):
        found |= stored_files(uri, run_id, entry.path) if entry.is_dir else {entry.path}
    return found


def check_layout(uri: str, run_id: str, checkpoint: Path, out: Path) -> None:
    """The artifacts of a run after `log_final_artifacts(checkpoint)`: paths and contents."""
    assert stored_files(uri, run_id) == EXPECTED | {"config.yaml"}
    assert download_run_model(run_id, uri, out).read_bytes() == b"weights"
    final = download_run_artifact(run_id, "metrics/final.json", uri, out)
    assert json.loads(final.read_text()) == json.loads((checkpoint / "metrics.json").read_text())
    table = download_run_artifact(run_id, "roc/roc.csv", uri, out)
    assert table.read_bytes() == (checkpoint / "roc/roc.csv").read_bytes()


def test_final_files_follow_the_layout(
    sqlite_uri: str, quickstart_config: ReidConfig, tmp_path: Path
) -> None:
    run = open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="final", config=quickstart_config
    )
    checkpoint = write_final_checkpoint(tmp_path / "checkpoint_000005")
    logged = log_final_artifacts(sqlite_uri, run.run_id, checkpoint)
    assert set(logged) == EXPECTED and len(logged) == len(EXPECTED)
    # a retried final report logs the same paths again, nothing more
    assert set(log_final_artifacts(sqlite_uri, run.run_id, checkpoint)) == EXPECTED
    check_layout(sqlite_uri, run.run_id, checkpoint, tmp_path / "out")


def test_checkpoint_without_model_is_named(
    sqlite_uri: str, quickstart_config: ReidConfig, tmp_path: Path
) -> None:
    run = open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="empty", config=quickstart_config
    )
    with pytest.raises(ReidError, match=r"final checkpoint .*empty holds no model\.pt"):
        log_final_artifacts(sqlite_uri, run.run_id, tmp_path / "empty")
