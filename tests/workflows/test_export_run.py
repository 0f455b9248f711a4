"""`export_run` refuses runs it cannot export before downloading anything (real sqlite store)."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.workflows.export_run import export_run


def test_only_a_finished_run_is_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e")
    running = client.create_run(experiment).info.run_id
    failed = client.create_run(experiment).info.run_id
    client.set_terminated(failed, "FAILED")
    finished = client.create_run(experiment).info.run_id
    client.set_terminated(finished, "FINISHED")
    cases = {
        running: f"run {running} is still RUNNING",
        failed: f"run {failed} ended FAILED; only a FINISHED run can be exported",
        finished: f"run {finished!r} has no artifact checkpoints/model.pt",
    }
    for run_id, sentence in cases.items():
        with pytest.raises(ReidError, match=sentence):
            export_run(uri, run_id, format="onnx", work_dir=tmp_path / "work")
    # A format and precision that do not go together: refused before the run is even read.
    with pytest.raises(ReidError, match=r"^int8 applies to TensorRT engines only"):
        export_run(uri, "feedbeef", format="onnx", precision="int8", work_dir=tmp_path)
    with pytest.raises(ReidError, match="does not exist"):
        export_run(f"sqlite:///{tmp_path / 'nope.db'}", running, format="onnx", work_dir=tmp_path)
