"""`reid train` on a real local Ray (2 gloo CPU workers) into a real MLflow sqlite store.

One Ray per module (starting one costs ~15 s, a Train worker group ~30 s on 2 cores); tiny
synthetic data at 64×32. Deselect with `-m "not ray"`.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from ray.util.state import list_actors

from reid_platform.cli.main import main
from reid_platform.cli.train_command import with_run_name
from reid_platform.config import load_config
from reid_platform.config.flatten import flatten, to_yaml
from reid_platform.distributed.callbacks import MlflowReportCallback
from reid_platform.distributed.trainer import TrainingLaunch, build_trainer, fit
from reid_platform.modeling.model_file import load_model_file
from reid_platform.tracking.runs import open_training_run
from reid_platform.training.hooks import TrainingOutcome

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments/quickstart.yaml"
EXPERIMENT = "quickstart"
SNAPSHOT = "checkpoint_manager_snapshot.json"
# The `tiny_overrides` fixture of conftest.py: (data_root, out, *, epochs) → overrides.
TinyOverrides = Callable[..., list[str]]


def tracking_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def only_run(uri: str) -> Run:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def metric_steps(uri: str, run: Run) -> dict[str, list[int]]:
    """key → the steps of its history, in logging order (duplicates kept)."""
    client = MlflowClient(uri)
    return {
        key: sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def assert_complete_history(steps: dict[str, list[int]], epochs: int) -> None:
    """train/* and eval/* once per epoch 0..epochs-1; test/* and export/* once, at the last."""
    assert {"train/loss", "train/lr", "train/images_per_sec", "eval/mAP", "test/mAP"} <= set(steps)
    for key, logged in steps.items():
        once = key.startswith(("test/", "export/"))
        expected = [epochs - 1] if once else list(range(epochs))
        assert logged == expected, key


def artifact_paths(uri: str, run_id: str, folder: str | None = None) -> set[str]:
    client = MlflowClient(uri)
    paths: set[str] = set()
    for entry in client.list_artifacts(run_id, folder):
        paths |= artifact_paths(uri, run_id, entry.path) if entry.is_dir else {entry.path}
    return paths


def wait_for(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def checkpoint_registered(run_dir: Path, name: str) -> Callable[[], bool]:
    """Whether Ray Train registered checkpoint `name` (a copied folder alone may be orphaned)."""
    snapshot = run_dir / SNAPSHOT
    return lambda: snapshot.is_file() and name in snapshot.read_text(encoding="utf-8")


def test_two_gloo_workers_train_and_track_everything(
    tiny_overrides: TinyOverrides,
    cluster: str,
    data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    overrides = tiny_overrides(data_root, tmp_path, epochs=3, export=True)
    uri = tracking_uri(tmp_path)
    assert main(["train", str(QUICKSTART), *overrides, "--tracking-uri", uri]) == 0

    run = only_run(uri)
    name = run.data.tags["reid.run_name"]
    assert re.fullmatch(rf"{EXPERIMENT}-\d{{8}}-\d{{6}}-[0-9a-f]{{4}}", name)
    assert run.info.status == "FINISHED"
    assert run.data.tags["reid.kind"] == "train"
    assert {"reid.env.torch", "reid.env.ray", "reid.env.mlflow"} <= set(run.data.tags)
    config = with_run_name(load_config(QUICKSTART, overrides), name)
    assert run.data.params == flatten(config)
    client = MlflowClient(uri)
    config_file = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert Path(config_file).read_text(encoding="utf-8") == to_yaml(config)
    assert_complete_history(metric_steps(uri, run), epochs=3)

    artifacts = artifact_paths(uri, run.info.run_id)
    assert {"checkpoints/model.pt", "roc/roc.png", "roc/roc.csv"} <= artifacts
    assert any(re.fullmatch(r"ranklist/.+\.png", path) for path in artifacts)
    model_file = client.download_artifacts(run.info.run_id, "checkpoints/model.pt", str(tmp_path))
    assert load_model_file(Path(model_file)).num_classes == 8  # 12 train ids − 4 validation
    # The trained model, exported by rank 0 after the test evaluation, logged beside it.
    assert {"export/model.onnx", "export/manifest.json"} <= artifacts
    assert run.data.tags["reid.export.onnx"] == "exported fp32"
    assert run.data.metrics["export/latency_ms"] > 0
    assert run.data.metrics["export/images_per_sec"] > 0

    summary = capsys.readouterr().out
    assert run.info.run_id in summary and name in summary
    final_map = run.data.metrics["test/mAP"]
    assert f"{100 * final_map:.2f}%" in summary


def _fit_in_thread(trainer: Any, result: dict[str, Any]) -> threading.Thread:
    def target() -> None:
        try:
            result["outcome"] = fit(trainer)
        except BaseException as error:  # re-raised by the test
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _train_worker_pids() -> list[int]:
    actors = list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])
    return sorted(int(actor.pid) for actor in actors)


def test_killed_worker_is_replaced_and_history_has_no_gaps_or_duplicates(
    tiny_overrides: TinyOverrides, cluster: str, data_root: Path, tmp_path: Path
) -> None:
    epochs, name, uri = 3, "killed-worker", tracking_uri(tmp_path)
    overrides = [*tiny_overrides(data_root, tmp_path, epochs=epochs), "distributed.max_failures=1"]
    config = with_run_name(load_config(QUICKSTART, overrides), name)
    tracked = open_training_run(
        tracking_uri=uri, experiment=EXPERIMENT, run_name=name, config=config
    )
    callback = MlflowReportCallback(tracking_uri=uri, run_id=tracked.run_id)
    trainer = build_trainer(
        config, TrainingLaunch(run_name=name, working_dir=tmp_path), callbacks=[callback]
    )
    result: dict[str, Any] = {}
    thread = _fit_in_thread(trainer, result)

    registered = checkpoint_registered(tmp_path / "ray" / name, "epoch_0000")
    wait_for(registered, timeout_s=240, what="the first checkpoint")
    time.sleep(0.5)  # into epoch 1's iterations
    victims = _train_worker_pids()
    assert len(victims) == 2
    os.kill(victims[-1], signal.SIGKILL)
    thread.join(timeout=300)

    assert not thread.is_alive(), "training did not finish after the worker was killed"
    if "error" in result:
        raise result["error"]
    outcome: TrainingOutcome = result["outcome"]
    # The replacement worker group resumed from a checkpoint instead of starting over.
    assert outcome.start_epoch >= 1
    assert outcome.start_epoch + outcome.epochs_run == epochs
    run = only_run(uri)
    assert run.info.run_id == tracked.run_id
    assert_complete_history(metric_steps(uri, run), epochs=epochs)
    assert "reid.last_worker_error" in run.data.tags


def test_interrupted_driver_relaunched_with_its_name_resumes_the_same_run(
    tiny_overrides: TinyOverrides,
    cluster: str,
    data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    epochs, name, uri = 3, "interrupted", tracking_uri(tmp_path)
    argv = [
        "train",
        str(QUICKSTART),
        *tiny_overrides(data_root, tmp_path, epochs=epochs),
        "--tracking-uri",
        uri,
        "--run-name",
        name,
    ]
    log = tmp_path / "first_launch.log"
    with log.open("w") as sink:
        driver = subprocess.Popen(
            [str(Path(sys.executable).parent / "reid"), *argv, "--address", cluster],
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        registered = checkpoint_registered(tmp_path / "ray" / name, "epoch_0000")
        wait_for(registered, timeout_s=240, what="the first checkpoint of the first launch")
        driver.send_signal(signal.SIGINT)  # Ctrl-C
        assert driver.wait(timeout=120) == 130, log.read_text()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    first = only_run(uri)
    assert first.info.status == "KILLED"
    assert not checkpoint_registered(tmp_path / "ray" / name, f"epoch_{epochs - 1:04d}")()

    capsys.readouterr()
    assert main(argv) == 0
    summary = capsys.readouterr().out
    assert re.search(r"resumed after epoch [12]", summary), summary
    run = only_run(uri)
    assert run.info.run_id == first.info.run_id
    assert run.info.status == "FINISHED"
    assert_complete_history(metric_steps(uri, run), epochs=epochs)


def test_two_workers_each_fetch_the_teacher_and_put_it_on_their_device(
    tiny_overrides: TinyOverrides, cluster: str, data_root: Path, tmp_path: Path
) -> None:
    """fast-reid#690: the teacher is no submodule, so DDP never moves it; each worker must."""
    from reid_platform.data.build import build_data
    from reid_platform.data.splits import label_map_digest
    from reid_platform.modeling.build import build_model
    from reid_platform.modeling.model_file import save_model_file
    from reid_platform.tracking.model_files import pin_distillation_models
    from reid_platform.tracking.runs import experiment_id_for

    uri, overrides = tracking_uri(tmp_path), tiny_overrides(data_root, tmp_path, epochs=1)
    teacher_config = load_config(QUICKSTART, overrides)
    data = build_data(teacher_config.data)
    saved = save_model_file(
        build_model(teacher_config.model, teacher_config.input, num_classes=data.num_classes),
        config=teacher_config,
        num_classes=data.num_classes,
        source={"format": "test", "label_map": label_map_digest(data.train)},
        out=tmp_path / "teacher" / "model.pt",
    )
    client = MlflowClient(uri)
    teacher = client.create_run(experiment_id_for(client, "teachers")).info.run_id
    client.log_artifact(teacher, str(saved), "checkpoints")
    config = load_config(
        QUICKSTART,
        [*overrides, "distillation.enabled=true", f"distillation.teacher_run_id={teacher}"],
    )
    seen = tmp_path / "seen"
    seen.mkdir()

    def recording_train(config: Any, *, placement: Any, **kwargs: Any) -> TrainingOutcome:
        from reid_platform.training.loop import train

        outcome = train(config, placement=placement, **kwargs)
        files = kwargs["distillation_files"]
        line = f"{placement.device} {outcome.teacher_device} {files.teacher} {files.teacher_name}"
        (seen / f"rank{placement.rank}").write_text(line)
        return outcome

    launch = TrainingLaunch(run_name="two-workers-distill", working_dir=tmp_path)
    models = pin_distillation_models(config, uri, tmp_path / "pins")
    fit(build_trainer(config, launch, train_fn=recording_train, models=models))
    ranks = {path.name: path.read_text().split() for path in seen.iterdir()}
    assert sorted(ranks) == ["rank0", "rank1"]
    for device, teacher_device, _, _, run_id in ranks.values():
        assert teacher_device == device and run_id == teacher
    # Each worker fetched its own copy into its own scratch folder.
    assert ranks["rank0"][2] != ranks["rank1"][2]
