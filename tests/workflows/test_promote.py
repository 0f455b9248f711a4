"""`reid promote` end to end on a real local Ray into a real MLflow sqlite store: a one-trial
search on the tiny synthetic benchmark → its best trial teaches the shipped quickstart student
→ a FINISHED distill run → a registered version with alias champion → `reid fetch` by alias;
a gated promotion of a worse student → challenger; an interrupted promotion resumed once and
never done twice; and the refusals, each before anything is registered or moved.

Expected values are read back with a plain `MlflowClient` and files hashed with hashlib.
"""

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from reid_platform.cli.main import main
from reid_platform.config import load_config
from reid_platform.config.flatten import to_yaml
from reid_platform.tracking.registry import register_export

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments/quickstart.yaml"
STUDENT = REPO / "experiments/distill_quickstart.yaml"
MODEL = "reid-quickstart"  # the student config's tracking.registered_model
TinyOverrides = Callable[..., list[str]]
SPACE = {
    "objectives": [{"metric": "eval/mAP", "mode": "max"}],
    "num_samples": 1,
    "resources": {"max_concurrent_trials": 1},
    "fixed": {"distributed.num_workers": 1},
    "params": {"model.pooling.kind": {"type": "choice", "values": ["avg"]}},
}


@dataclass(frozen=True)
class Setup:
    folder: Path
    uri: str
    search_name: str
    search_id: str
    teacher_id: str
    student: list[str]  # `--student CONFIG overrides...` for a 2-epoch tiny student


def run_cli(folder: Path, argv: list[str]) -> tuple[int, str]:
    """`reid ARGV` in-process from `folder` (relative paths resolve there) → (status, stdout)."""
    old, out = Path.cwd(), io.StringIO()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out):
            status = main(argv)
    finally:
        os.chdir(old)
    return status, out.getvalue()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def runs_of(uri: str, kind: str) -> list[Run]:
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string=f"tags.`reid.kind` = '{kind}'")


@pytest.fixture(scope="module")
def setup(
    cluster: str,
    data_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_overrides: TinyOverrides,
) -> Setup:
    """A finished one-trial search (3 epochs, exported): its trial is the teacher."""
    folder = tmp_path_factory.mktemp("promote")
    config = folder / "tiny.yaml"
    teacher = tiny_overrides(data_root, folder, epochs=3, export=True)
    config.write_text(to_yaml(load_config(QUICKSTART, teacher)))
    (folder / "space.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    argv = ["search", "tiny.yaml", "--space", "space.yaml", "--name", "s1", "--tracking-uri", uri]
    assert run_cli(folder, argv)[0] == 0
    (search,) = runs_of(uri, "search")
    student = [
        str(STUDENT),
        *tiny_overrides(data_root, folder, epochs=2, export=True),
        "distributed.num_workers=1",
        "distributed.cpus_per_worker=1",
    ]
    return Setup(
        folder, uri, "s1", search.info.run_id, search.data.tags["reid.best_run_id"], student
    )


@dataclass(frozen=True)
class Promoted:
    run: Run
    output: str


@pytest.fixture(scope="module")
def promoted(setup: Setup) -> Promoted:
    argv = ["promote", setup.search_name, "--student", *setup.student, "--tracking-uri", setup.uri]
    status, output = run_cli(setup.folder, argv)
    assert status == 0
    (run,) = runs_of(setup.uri, "distill")
    return Promoted(run, output)


def test_promotion_trains_a_distill_run_of_the_search_best_trial(
    setup: Setup, promoted: Promoted
) -> None:
    run, client = promoted.run, MlflowClient(setup.uri)
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["reid.teacher_run_id"] == setup.teacher_id
    assert tags["reid.search_run_id"] == setup.search_id
    assert "mlflow.parentRunId" not in tags  # not a child: the search's tables stay clean
    teacher_file = Path(client.download_artifacts(setup.teacher_id, "checkpoints/model.pt"))
    assert tags["reid.teacher_checkpoint_sha256"] == sha256(teacher_file)
    params = run.data.params
    assert params["distillation.enabled"] == "true"
    assert params["distillation.teacher_run_id"] == setup.teacher_id
    assert params["model.backbone.name"] == "timm:resnet10t"  # the student's own model
    teacher_params = client.get_run(setup.teacher_id).data.params
    for key in ("data.validation.num_ids", "input.size_train", "model.classifier.kind"):
        assert params[key] == teacher_params[key]
    metrics = run.data.metrics
    assert {"train/loss_distill_logit", "train/loss_distill_pkt", "test/mAP"} <= metrics.keys()
    # The teacher re-measured before training reproduces what its run logged.
    logged = client.get_run(setup.teacher_id).data.metrics
    assert metrics["teacher/eval/mAP"] == pytest.approx(logged["eval/mAP"], abs=1e-3)
    assert metrics["teacher/model/params"] == logged["model/params"]
    assert metrics["teacher/export/latency_ms"] == logged["export/latency_ms"]
    # One search, one trial: the distill run is not among the search's children.
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{setup.search_id}'",
    )
    assert [child.info.run_id for child in children] == [setup.teacher_id]


def test_the_exported_student_is_champion_and_fetched_by_alias(
    setup: Setup, promoted: Promoted
) -> None:
    client = MlflowClient(setup.uri)
    version = client.get_model_version_by_alias(MODEL, "champion")
    assert version.run_id == promoted.run.info.run_id
    assert version.tags["reid.teacher_run_id"] == setup.teacher_id
    assert version.tags["reid.search_run_id"] == setup.search_id
    assert version.tags["reid.distill_run_id"] == promoted.run.info.run_id
    assert float(version.tags["reid.validation_mAP"]) == pytest.approx(
        promoted.run.data.metrics["eval/mAP"], abs=1e-4
    )
    assert float(version.tags["reid.latency_ms"]) > 0
    assert f"distilled from run {setup.teacher_id}" in version.description
    manifest = Path(client.download_artifacts(promoted.run.info.run_id, "export/manifest.json"))
    exported = json.loads(manifest.read_text())["exports"][0]["sha256"]
    assert version.tags["reid.sha256"] == exported
    fetch = f"reid fetch models:/{MODEL}@champion --format onnx --out deploy/"
    assert fetch in promoted.output
    argv = ["fetch", f"models:/{MODEL}@champion", "--format", "onnx", "--out", "deploy"]
    assert run_cli(setup.folder, [*argv, "--tracking-uri", setup.uri])[0] == 0
    assert sha256(setup.folder / "deploy" / "model.onnx") == exported
    assert "teacher (run" in promoted.output and "validation mAP" in promoted.output


def test_a_gated_promotion_of_a_worse_student_gets_challenger(
    setup: Setup, promoted: Promoted
) -> None:
    # The current champion of another registered model is the teacher's own export.
    register_export(setup.uri, setup.teacher_id, name="gated", format="onnx", aliases=["champion"])
    untrained = ["solver.optimizer.base_lr=1e-9", "solver.schedule.cosine.eta_min=0"]
    argv = ["promote", "s1", "--gate", "--register", "gated", "--student"]
    argv += [*setup.student, *untrained, "--tracking-uri", setup.uri]
    status, output = run_cli(setup.folder, argv)
    assert status == 0
    client = MlflowClient(setup.uri)
    teacher_map = client.get_run(setup.teacher_id).data.metrics["eval/mAP"]
    challenger = client.get_model_version_by_alias("gated", "challenger")
    student_map = client.get_run(challenger.run_id).data.metrics["eval/mAP"]
    assert student_map < teacher_map, "the untrained student must be the worse one"
    assert int(challenger.version) == 2 and challenger.tags["reid.promotion"] == "challenger"
    assert int(client.get_model_version_by_alias("gated", "champion").version) == 1
    assert "reid.previous_champion" not in challenger.tags
    assert challenger.tags["reid.search_run_id"] == setup.search_id
    assert "reid fetch models:/gated@challenger" in output


def test_an_interrupted_promotion_resumes_once_and_is_never_done_twice(
    setup: Setup, promoted: Promoted, cluster: str
) -> None:
    student = [*setup.student, "solver.max_epochs=3"]  # another config: another distill run
    argv = ["promote", setup.search_name, "--student", *student, "--tracking-uri", setup.uri]
    before = {run.info.run_id for run in runs_of(setup.uri, "distill")}
    train_runs = set((setup.folder / "ray").glob("distill-*"))
    log = setup.folder / "interrupted.log"
    with log.open("w") as sink:
        driver = subprocess.Popen(
            [str(Path(sys.executable).parent / "reid"), *argv, "--address", cluster],
            cwd=setup.folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_checkpoint(setup.folder / "ray", train_runs, driver, log)
        driver.send_signal(signal.SIGINT)  # Ctrl-C
        assert driver.wait(timeout=120) == 130, log.read_text()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    (interrupted,) = [r for r in runs_of(setup.uri, "distill") if r.info.run_id not in before]
    assert interrupted.info.status == "KILLED"
    client = MlflowClient(setup.uri)
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1

    status, output = run_cli(setup.folder, argv)
    assert status == 0 and "resumed after epoch" in output, output
    runs = [r for r in runs_of(setup.uri, "distill") if r.info.run_id not in before]
    assert [r.info.run_id for r in runs] == [interrupted.info.run_id]
    assert runs[0].info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")]
    assert steps == [0, 1, 2], "one history: resumed, not restarted"
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.run_id == interrupted.info.run_id and int(champion.version) == 2
    assert champion.tags["reid.previous_champion"] == "1"

    status, output = run_cli(setup.folder, argv)  # the same promotion once more
    assert status == 0 and "registered by an earlier launch" in output
    assert "finished by an earlier launch, not trained again" in output
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2
    assert len(runs_of(setup.uri, "distill")) == len(before) + 1
    assert client.get_run(interrupted.info.run_id).info.status == "FINISHED"


def wait_for_checkpoint(
    storage: Path, earlier: set[Path], driver: subprocess.Popen, log: Path
) -> None:
    """Until a new distill run's Ray Train run has registered its first checkpoint."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert driver.poll() is None, log.read_text()
        for folder in set(storage.glob("distill-*")) - earlier:
            snapshot = folder / "checkpoint_manager_snapshot.json"
            if snapshot.is_file() and "epoch_0000" in snapshot.read_text():
                return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the first checkpoint of the new distill run")


def state(uri: str) -> tuple[int, int]:
    """(distill runs, registered model versions): what a refusal must leave unchanged."""
    client = MlflowClient(uri)
    return len(runs_of(uri, "distill")), len(client.search_model_versions())


def refused(setup: Setup, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `reid promote ARGV` expecting a refusal; → its one sentence (nothing created)."""
    before = state(setup.uri)
    capsys.readouterr()
    status, _ = run_cli(setup.folder, ["promote", *argv, "--tracking-uri", setup.uri])
    sentence = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and sentence.startswith("error: "), sentence
    assert state(setup.uri) == before
    return sentence


def fake_run(uri: str, kind: str, status: str, tags: dict[str, str] | None = None) -> str:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("quickstart")
    assert experiment is not None
    run = client.create_run(experiment.experiment_id, tags={"reid.kind": kind, **(tags or {})})
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_searches_that_cannot_promote_are_refused_by_name(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    student = ["--student", *setup.student]
    assert "no search run has the id or name 'nope'" in refused(setup, ["nope", *student], capsys)
    running = fake_run(setup.uri, "search", "RUNNING", {"reid.run_name": "live"})
    assert "search live is RUNNING" in refused(setup, [running, *student], capsys)
    empty = fake_run(setup.uri, "search", "FINISHED")
    assert f"search {empty} has no best trial" in refused(setup, [empty, *student], capsys)
    stopped = fake_run(
        setup.uri,
        "trial",
        "FINISHED",
        {"reid.trial_id": "abc", "reid.trial_status": "stopped_early"},
    )
    search = fake_run(setup.uri, "search", "FINISHED", {"reid.best_run_id": stopped})
    sentence = refused(setup, [search, *student], capsys)
    assert f"trial abc (run {stopped}), stopped early has no checkpoints/model.pt" in sentence
    not_search = refused(setup, [setup.teacher_id, *student], capsys)
    assert "is a trial run, not a search; to distil from it, give it as --teacher" in not_search


def test_bad_students_and_aliases_are_refused_before_anything(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    student = ["--student", *setup.student]
    assert "reserved by MLflow" in refused(setup, ["s1", "--alias", "latest", *student], capsys)
    mgn = [*student, "model.kind=mgn", "model.backbone.name=resnet18"]
    sentence = refused(setup, ["s1", *mgn], capsys)
    assert "the logit term cannot use teacher" in sentence and "classifier heads" in sentence
    no_export = refused(setup, ["s1", *student, "export.formats=[]"], capsys)
    assert "export.formats is empty" in no_export
    elsewhere = refused(setup, [*student, "tracking.experiment=elsewhere"], capsys)
    assert "MLflow experiment 'elsewhere' holds no search to promote from" in elsewhere


def test_a_teacher_that_does_not_reproduce_its_logged_map_is_refused(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """FastReID's most reported trap: a teacher that is not the model its run measured."""
    client = MlflowClient(setup.uri)
    weights = Path(client.download_artifacts(setup.teacher_id, "checkpoints/model.pt"))
    claimed = fake_run(setup.uri, "train", "FINISHED")
    client.log_artifact(claimed, str(weights), "checkpoints")
    client.log_metric(claimed, "eval/mAP", 0.99)
    sentence = refused(setup, ["--teacher", claimed, "--student", *setup.student], capsys)
    assert f"the teacher checkpoint of run {claimed} gives" in sentence
    assert "but the run logged 0.9900" in sentence


def test_a_search_tunes_a_distillation_with_its_teacher_fixed(setup: Setup) -> None:
    space = {
        **SPACE,
        "fixed": {"distributed.num_workers": 1, "solver.max_epochs": 1, "export.formats": []},
        "params": {"distillation.pkt.weight": {"type": "loguniform", "low": 30.0, "high": 3000.0}},
    }
    (setup.folder / "distill_space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    teacher = f"distillation.teacher_run_id={setup.teacher_id}"
    argv = ["search", *setup.student, teacher, "--space", "distill_space.yaml", "--name", "ds"]
    assert run_cli(setup.folder, [*argv, "--tracking-uri", setup.uri])[0] == 0
    client = MlflowClient(setup.uri)
    searches = runs_of(setup.uri, "search")
    (parent,) = [r for r in searches if r.data.tags.get("reid.run_name") == "ds"]
    trials = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    assert len(trials) == 1 and trials[0].info.status == "FINISHED"
    tags, metrics = trials[0].data.tags, trials[0].data.metrics
    assert tags["reid.teacher_run_id"] == setup.teacher_id
    teacher_file = Path(client.download_artifacts(setup.teacher_id, "checkpoints/model.pt"))
    assert tags["reid.teacher_checkpoint_sha256"] == sha256(teacher_file)
    assert {"train/loss_distill_logit", "train/loss_distill_pkt", "eval/mAP"} <= metrics.keys()
