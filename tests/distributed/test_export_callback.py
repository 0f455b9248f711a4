"""The controller callback logs a final checkpoint's `export/` folder, and never fails the run
over it (no Ray cluster needed: the callback is called directly, as the controller would)."""

from pathlib import Path

import pytest
import ray.train
from mlflow.tracking import MlflowClient

from reid_platform.distributed.callbacks import MlflowReportCallback
from reid_platform.distributed.worker import EPOCH_KEY, FINAL_KEY
from reid_platform.export.manifest import ExportFailure, ManifestFile, write_manifest_file

SKIPPED = ExportFailure("tensorrt", "fp16", "skipped", "TensorRT export needs a CUDA GPU.")


def final_report(uri: str, run_id: str, checkpoint: Path) -> None:
    callback = MlflowReportCallback(tracking_uri=uri, run_id=run_id)
    report = {EPOCH_KEY: 3, FINAL_KEY: True, "test/mAP": 0.5}
    callback.after_report(None, [report], ray.train.Checkpoint.from_directory(str(checkpoint)))


def checkpoint_folder(root: Path) -> Path:
    (root / "export").mkdir(parents=True)
    (root / "model.pt").write_bytes(b"weights")
    return root


def test_final_exports_are_logged_and_a_broken_one_only_tags_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("callbacks")

    good = checkpoint_folder(tmp_path / "good")
    write_manifest_file(ManifestFile(failures=(SKIPPED,)), good / "export")
    run_id = client.create_run(experiment).info.run_id
    final_report(uri, run_id, good)
    logged = {entry.path for entry in client.list_artifacts(run_id, "export")}
    assert logged == {"export/manifest.json"}
    run = client.get_run(run_id)
    assert run.data.tags["reid.export.tensorrt"] == "skipped: TensorRT export needs a CUDA GPU."
    assert run.data.metrics["test/mAP"] == 0.5

    broken = checkpoint_folder(tmp_path / "broken")
    (broken / "export/manifest.json").write_text("{not json")
    run_id = client.create_run(experiment).info.run_id
    final_report(uri, run_id, broken)  # does not raise
    assert [entry.path for entry in client.list_artifacts(run_id, "checkpoints")] == [
        "checkpoints/model.pt"
    ]
    assert client.list_artifacts(run_id, "export") == []
    assert "export manifest" in client.get_run(run_id).data.tags["reid.export_log_error"]
