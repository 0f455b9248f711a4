"""A run's model file pinned by SHA-256 and fetched against the pin; the teacher a distillation
run records. Real sqlite MLflow store; the model files are plain bytes (only hashed here)."""

import hashlib
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.tracking.distill_runs import record_teacher
from reid_platform.tracking.model_files import (
    RunModelFile,
    fetch_run_model,
    pin_distillation_models,
    pin_run_model,
)
from reid_platform.tracking.runs import experiment_id_for


def run_with_model(uri: str, folder: Path, content: bytes) -> str:
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id_for(client, "teachers")).info.run_id
    log_model_bytes(uri, run_id, folder, content)
    return run_id


def log_model_bytes(uri: str, run_id: str, folder: Path, content: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pt").write_bytes(content)
    MlflowClient(uri).log_artifact(run_id, str(folder / "model.pt"), "checkpoints")


def test_pin_and_fetch_agree_with_the_file_hash(sqlite_uri: str, tmp_path: Path) -> None:
    run_id = run_with_model(sqlite_uri, tmp_path / "a", b"teacher weights")
    path, pinned = pin_run_model(run_id, sqlite_uri, tmp_path / "pin")
    assert pinned == RunModelFile(run_id, hashlib.sha256(b"teacher weights").hexdigest())
    fetched = fetch_run_model(pinned, sqlite_uri, tmp_path / "worker")
    assert fetched.read_bytes() == path.read_bytes() == b"teacher weights"


def test_a_replaced_model_file_is_refused_and_not_left_behind(
    sqlite_uri: str, tmp_path: Path
) -> None:
    run_id = run_with_model(sqlite_uri, tmp_path / "a", b"teacher weights")
    _, pinned = pin_run_model(run_id, sqlite_uri, tmp_path / "pin")
    log_model_bytes(sqlite_uri, run_id, tmp_path / "b", b"other weights")
    worker = tmp_path / "worker"
    with pytest.raises(ReidError, match=f"the model file of run {run_id} has SHA-256"):
        fetch_run_model(pinned, sqlite_uri, worker)
    assert list(worker.rglob("*.pt")) == []


def test_a_run_without_a_model_file_is_named(sqlite_uri: str, tmp_path: Path) -> None:
    client = MlflowClient(sqlite_uri)
    run_id = client.create_run(experiment_id_for(client, "teachers")).info.run_id
    with pytest.raises(ReidError, match=f"run '{run_id}' has no artifact checkpoints/model.pt"):
        pin_run_model(run_id, sqlite_uri, tmp_path)
    with pytest.raises(ReidError, match="is not in the tracking store"):
        pin_run_model("0" * 32, sqlite_uri, tmp_path)


def test_known_pins_are_not_downloaded_again(
    sqlite_uri: str, tmp_path: Path, quickstart_config
) -> None:
    teacher = run_with_model(sqlite_uri, tmp_path / "t", b"teacher")
    init = run_with_model(sqlite_uri, tmp_path / "i", b"init")
    distillation = quickstart_config.distillation.model_copy(
        update={"enabled": True, "teacher_run_id": teacher, "student_init_run_id": init}
    )
    config = quickstart_config.model_copy(update={"distillation": distillation})
    pins = pin_distillation_models(
        config, sqlite_uri, tmp_path / "pins", known_sha256={teacher: "f" * 64}
    )
    assert pins.teacher == RunModelFile(teacher, "f" * 64)
    assert pins.student_init == RunModelFile(init, hashlib.sha256(b"init").hexdigest())
    assert pins.sha256_by_run() == {teacher: "f" * 64, init: pins.student_init.sha256}
    assert not (tmp_path / "pins" / "teacher").exists()
    off = pin_distillation_models(quickstart_config, sqlite_uri, tmp_path / "off")
    assert (off.teacher, off.student_init) == (None, None)


def test_the_recorded_teacher_cannot_change_under_a_run(sqlite_uri: str) -> None:
    client = MlflowClient(sqlite_uri)
    run_id = client.create_run(experiment_id_for(client, "distill")).info.run_id
    metrics = {"teacher/eval/mAP": 0.5, "teacher/model/params": 1e6}
    for _ in range(2):  # a relaunch records the same teacher again: nothing changes
        record_teacher(
            sqlite_uri,
            run_id,
            teacher_run_id="t1",
            sha256="a" * 64,
            search_run_id="s1",
            metrics=metrics,
        )
    tags = client.get_run(run_id).data.tags
    assert tags["reid.teacher_run_id"] == "t1" and tags["reid.search_run_id"] == "s1"
    assert tags["reid.teacher_checkpoint_sha256"] == "a" * 64
    assert [m.value for m in client.get_metric_history(run_id, "teacher/eval/mAP")] == [0.5]
    with pytest.raises(ReidError, match="teacher checkpoint aaaaaaaaaaaaaaaa, not bbbb"):
        record_teacher(
            sqlite_uri,
            run_id,
            teacher_run_id="t1",
            sha256="b" * 64,
            search_run_id="s1",
            metrics={},
        )
    with pytest.raises(ReidError, match=r"reid\.teacher_run_id t1, not t2"):
        record_teacher(
            sqlite_uri, run_id, teacher_run_id="t2", sha256=None, search_run_id=None, metrics={}
        )
