"""`reid search` on a real local Ray (Tune + Optuna + one Train worker per trial) into a real
MLflow sqlite store, on a tiny synthetic benchmark (24 ids at 64×32, 2 epochs per trial).

The pure helpers first (no Ray); then two searches: a 3-trial conditional space with ASHA,
checked from several angles (one search, module-scoped: a Train run costs ~20 s of start-up on
2 cores), and an interrupted search that is resumed. Expected values are read back from MLflow
with a plain `MlflowClient`. Deselect the searches with `-m "not ray"`.
"""

import contextlib
import csv
import functools
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from reid_platform.cli.main import main
from reid_platform.config import load_config
from reid_platform.config.flatten import to_yaml
from reid_platform.config.search import read_search_space
from reid_platform.distributed.search import cpus_needed
from reid_platform.distributed.search_callbacks import error_sentence, trial_outcome
from reid_platform.distributed.search_trial import SEARCH_KEY, SearchConstants
from reid_platform.errors import ReidError
from reid_platform.tracking.connection import absolute_tracking_uri

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments/quickstart.yaml"
EPOCHS = 2
# The `tiny_overrides` fixture of conftest.py: (data_root, out, *, epochs) → overrides.
TinyOverrides = Callable[..., list[str]]
ARCFACE_MARGIN = "model.classifier.arcface.margin"

# Objective `model/params` (minimised): deterministic, so ASHA's decision is known in advance.
# The second seed point (linear neck: +512×512 weights) is bigger than the first at ASHA's
# first rung (1 epoch) and must be stopped there.
ASHA_SPACE = {
    "objectives": [{"metric": "model/params", "mode": "min"}],
    "num_samples": 3,
    "scheduler": {"kind": "asha", "asha": {"grace_period": 1, "reduction_factor": 2}},
    "resources": {"max_concurrent_trials": 1},
    "fixed": {"distributed.num_workers": 1},
    "params": {
        "model.neck.kind": {"type": "choice", "values": ["bn", "linear"]},
        "model.classifier.kind": {"type": "choice", "values": ["linear", "arcface"]},
        ARCFACE_MARGIN: {
            "type": "uniform",
            "low": 0.2,
            "high": 0.6,
            "when": {"model.classifier.kind": ["arcface"]},
        },
    },
    "seed_points": [
        {"model.neck.kind": "bn", "model.classifier.kind": "linear"},
        {"model.neck.kind": "linear", "model.classifier.kind": "arcface", ARCFACE_MARGIN: 0.3},
    ],
}

PLAIN_SPACE = {
    "objectives": [{"metric": "eval/mAP", "mode": "max"}],
    "num_samples": 2,
    "resources": {"max_concurrent_trials": 1},
    "fixed": {"distributed.num_workers": 1},
    "params": {"model.pooling.kind": {"type": "choice", "values": ["avg", "max", "gem"]}},
}


TUNE_ERROR = """ray::ImplicitFunc.train() (pid=4242, ip=10.0.0.2, actor_id=ab12, repr=run_trial)
  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/trainable.py", line 331, in train
    raise skipped from exception_cause(skipped)
  File "/repo/reid_platform/distributed/trainer.py", line 148, in fit
    raise ReidError(_sentence(user_error)) from None
{last}
"""


@pytest.mark.parametrize(
    ("last", "sentence"),
    [
        (
            "reid_platform.errors.ReidError: data.train.0.root /x does not exist",
            "data.train.0.root /x does not exist",
        ),
        ("RuntimeError: CUDA out of memory", "RuntimeError: CUDA out of memory"),
        ("ray.exceptions.RayTaskError(ValueError): bad value", "ValueError: bad value"),
        ("worker died", "worker died"),
    ],
)
def test_failed_trial_reason_is_the_error_sentence(last: str, sentence: str) -> None:
    assert error_sentence(TUNE_ERROR.format(last=last)) == sentence


def test_failed_trial_without_text_still_has_a_reason() -> None:
    assert error_sentence(None) == error_sentence("\n  \n") != ""


def test_trial_outcome_follows_the_final_report() -> None:
    assert trial_outcome({"epoch": 5, "final": True}) == "completed"
    assert trial_outcome({"epoch": 1, "final": False}) == "stopped_early"
    assert trial_outcome({}) == "stopped_early"  # stopped before any report reached Tune


def test_local_ray_fits_every_concurrent_trial() -> None:
    space = read_search_space(
        {
            "resources": {"max_concurrent_trials": 2, "driver_cpus": 0.01},
            "params": {"model.pooling.kind": {"type": "choice", "values": ["avg"]}},
        }
    )
    config = load_config(QUICKSTART, ["distributed.num_workers=2", "distributed.cpus_per_worker=1"])
    # 2 trials × 2 workers × 1 CPU, plus 2 drivers × 0.01 CPU rounded up to one CPU
    assert cpus_needed(space, config) == 5


def test_trials_get_an_absolute_sqlite_uri(tmp_path: Path) -> None:
    # Tune runs each trial in its own folder: a relative database path would open another file.
    assert (
        absolute_tracking_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    )
    assert absolute_tracking_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert absolute_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_search_constants_travel_in_the_tune_config() -> None:
    constants = SearchConstants("s", "parent", "1", "sqlite:///m.db", "/work", 4)
    assert SearchConstants.from_config({SEARCH_KEY: constants.as_config(), "a.b": 1}) == constants
    with pytest.raises(ReidError, match=SEARCH_KEY):
        SearchConstants.from_config({"a.b": 1})


def write_inputs(
    folder: Path, data_root: Path, space: dict[str, object], overrides: TinyOverrides
) -> tuple[Path, Path]:
    """A tiny experiment YAML and a search-space YAML in `folder`."""
    config = folder / "tiny.yaml"
    config.write_text(to_yaml(load_config(QUICKSTART, overrides(data_root, folder, epochs=EPOCHS))))
    space_file = folder / "space.yaml"
    space_file.write_text(yaml.safe_dump(space, sort_keys=False))
    return config, space_file


def tracking_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


@dataclass(frozen=True)
class Search:
    name: str
    uri: str
    folder: Path
    parent: Run
    children: list[Run]
    output: str


def search_runs(uri: str, name: str) -> tuple[Run, list[Run]]:
    """The parent run named `name` and its children, read with a plain MlflowClient."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("quickstart")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("reid.kind") == "search"]
    assert [r.data.tags["reid.run_name"] for r in parents] == [name]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1, "every other run is a child of the search"
    return parent, sorted(children, key=lambda r: r.info.start_time)


@pytest.fixture(scope="module")
def asha_search(
    cluster: str,
    data_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_overrides: TinyOverrides,
) -> Iterator[Search]:
    folder = tmp_path_factory.mktemp("asha")
    exporting = functools.partial(tiny_overrides, export=True)
    config, space = write_inputs(folder, data_root, ASHA_SPACE, exporting)
    uri, name = tracking_uri(folder), "asha-search"
    argv = ["search", str(config), "--space", str(space), "--name", name, "--tracking-uri", uri]
    old = Path.cwd()
    os.chdir(folder)
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(argv) == 0
    finally:
        os.chdir(old)
    parent, children = search_runs(uri, name)
    yield Search(name, uri, folder, parent, children, out.getvalue())


def searched(run: Run) -> dict[str, object]:
    return json.loads(run.data.tags["reid.searched_params"])


def last_epoch(uri: str, run: Run) -> int:
    history = MlflowClient(uri).get_metric_history(run.info.run_id, "model/params")
    return max(point.step for point in history)


@pytest.mark.ray
@pytest.mark.slow
def test_conditional_params_exist_only_where_their_condition_holds(asha_search: Search) -> None:
    children = asha_search.children
    assert len(children) == 3
    # Seed points run first, exactly as given.
    assert [searched(run) for run in children[:2]] == ASHA_SPACE["seed_points"]
    for run in children:
        sampled, params = searched(run), run.data.params
        arcface = sampled["model.classifier.kind"] == "arcface"
        assert (ARCFACE_MARGIN in sampled) == arcface
        for key, value in sampled.items():
            assert params[key] == str(value)
        if not arcface:  # params hold the active classifier block only
            assert not any(key.startswith("model.classifier.arcface.") for key in params)
        assert params["distributed.num_workers"] == "1"  # the space's fixed setting


@pytest.mark.ray
@pytest.mark.slow
def test_parent_and_child_runs_follow_the_layout(asha_search: Search) -> None:
    parent, name = asha_search.parent, asha_search.name
    tags = parent.data.tags
    assert parent.info.status == "FINISHED"
    assert tags["reid.objective"] == "model/params" and tags["reid.mode"] == "min"
    assert parent.data.params["search.num_samples"] == "3"
    assert parent.data.params["search.scheduler"] == "asha"
    client = MlflowClient(asha_search.uri)
    artifacts = {entry.path for entry in client.list_artifacts(parent.info.run_id)}
    assert {"search_space.yaml", "config.yaml", "trials.csv", "figures"} <= artifacts
    trial_ids = set()
    for run in asha_search.children:
        trial_id = run.data.tags["reid.trial_id"]
        trial_ids.add(trial_id)
        assert run.data.tags["reid.kind"] == "trial"
        assert run.info.run_name == f"{name}-{trial_id}"
        # The trial's Train run, named after it, in the config's storage path.
        assert (asha_search.folder / "ray" / f"{name}-train-{trial_id}").is_dir()
    assert len(trial_ids) == 3
    assert (asha_search.folder / "ray" / name).is_dir()
    assert parent.info.run_id in asha_search.output


@pytest.mark.ray
@pytest.mark.slow
def test_asha_stops_the_bigger_model_and_its_run_is_closed(asha_search: Search) -> None:
    first, second, _ = asha_search.children
    assert first.data.metrics["model/params"] < second.data.metrics["model/params"]
    assert second.data.tags["reid.trial_status"] == "stopped_early"
    assert second.info.status == "FINISHED"
    assert last_epoch(asha_search.uri, second) == 0  # stopped at the first rung (1 epoch)
    for run in asha_search.children:
        # completed exactly when the trial reached its last epoch
        reached_end = last_epoch(asha_search.uri, run) == EPOCHS - 1
        expected = "completed" if reached_end else "stopped_early"
        assert run.data.tags["reid.trial_status"] == expected
        assert run.info.status == "FINISHED"


@pytest.mark.ray
@pytest.mark.slow
def test_finished_trials_export_and_stopped_ones_do_not(asha_search: Search) -> None:
    client = MlflowClient(asha_search.uri)
    for run in asha_search.children:
        run_id = run.info.run_id
        exported = {entry.path for entry in client.list_artifacts(run_id, "export")}
        if run.data.tags["reid.trial_status"] != "completed":
            # ASHA stopped it inside its training: no final report, so nothing was exported.
            assert not exported and "export/latency_ms" not in run.data.metrics
            continue
        assert {"export/model.onnx", "export/manifest.json"} <= exported
        assert run.data.tags["reid.export.onnx"] == "exported fp32"
        assert run.data.metrics["export/latency_ms"] > 0
        folder = Path(client.download_artifacts(run_id, "export", str(asha_search.folder / run_id)))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        (entry,) = manifest["exports"]
        digest = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
        assert entry["format"] == "onnx" and entry["sha256"] == digest
        assert entry["speed"] is not None and entry["parity"]["max_abs_diff"] <= 1e-4


@pytest.mark.ray
@pytest.mark.slow
def test_trials_csv_and_best_run_match_mlflow(asha_search: Search) -> None:
    client = MlflowClient(asha_search.uri)
    path = client.download_artifacts(
        asha_search.parent.info.run_id, "trials.csv", str(asha_search.folder)
    )
    rows = list(csv.DictReader(Path(path).read_text().splitlines()))
    by_run = {run.info.run_id: run for run in asha_search.children}
    assert sorted(row["run_id"] for row in rows) == sorted(by_run)
    for row in rows:
        run = by_run[row["run_id"]]
        assert row["trial_id"] == run.data.tags["reid.trial_id"]
        assert row["trial_status"] == run.data.tags["reid.trial_status"]
        assert float(row["model/params"]) == run.data.metrics["model/params"]
    smallest = min(run.data.metrics["model/params"] for run in asha_search.children)
    best = by_run[asha_search.parent.data.tags["reid.best_run_id"]]
    assert best.data.metrics["model/params"] == smallest
    assert asha_search.parent.data.metrics["best/model/params"] == smallest


def completed_trials(uri: str) -> int:
    try:
        _, children = search_runs(uri, "interrupted")
    except (AssertionError, Exception):
        return 0
    return sum(run.data.tags.get("reid.trial_status") == "completed" for run in children)


@pytest.mark.ray
@pytest.mark.slow
def test_interrupted_search_resumes_without_duplicates(
    cluster: str, data_root: Path, tmp_path: Path, tiny_overrides: TinyOverrides
) -> None:
    config, space = write_inputs(tmp_path, data_root, PLAIN_SPACE, tiny_overrides)
    uri, name = tracking_uri(tmp_path), "interrupted"
    argv = ["search", str(config), "--space", str(space), "--name", name, "--tracking-uri", uri]
    log = tmp_path / "first_launch.log"
    # The local cluster's ray.init set RAY_AUTH_MODE=token in this process; a user's shell has
    # no such variable, so the driver must turn token auth on by itself to join.
    env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
    with log.open("w") as sink:
        driver = subprocess.Popen(
            [str(Path(sys.executable).parent / "reid"), *argv, "--address", cluster],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while completed_trials(uri) < 1:
            assert driver.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no trial completed in 300 s"
            time.sleep(1.0)
        driver.send_signal(signal.SIGINT)  # Ctrl-C
        assert driver.wait(timeout=120) == 130, log.read_text()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    first_parent, first_children = search_runs(uri, name)
    assert first_parent.info.status == "KILLED"
    assert f"--name {name} --resume" in log.read_text()
    assert len(first_children) < 2 or any(
        run.data.tags["reid.trial_status"] == "interrupted" for run in first_children
    )

    os.chdir(tmp_path)
    try:
        assert main([*argv, "--resume"]) == 0
    finally:
        os.chdir(REPO)
    parent, children = search_runs(uri, name)
    assert parent.info.run_id == first_parent.info.run_id
    assert parent.info.status == "FINISHED"
    trial_ids = [run.data.tags["reid.trial_id"] for run in children]
    assert len(children) == 2 and len(set(trial_ids)) == 2
    # Runs of the first launch are continued, never duplicated.
    assert {run.info.run_id for run in first_children} <= {run.info.run_id for run in children}
    for run in children:
        assert run.data.tags["reid.trial_status"] == "completed"
        assert run.info.status == "FINISHED"
        assert last_epoch(uri, run) == EPOCHS - 1
