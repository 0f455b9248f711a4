"""`compare_trials` against searches written to a real sqlite MLflow store, read back directly."""

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.config.loading import load_config
from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.search_runs import close_trial_run, open_search_run, open_trial_run
from reid_platform.workflows.compare import compare_trials

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments(max_results=1)
    return database


@pytest.fixture
def uri(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    shutil.copyfile(template, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)  # MLflow writes artifacts under ./mlruns
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def config() -> ReidConfig:
    return load_config(QUICKSTART)


def make_search(
    uri: str, config: ReidConfig, name: str, values: dict[str, float | None], mode: str = "max"
) -> tuple[str, dict[str, str]]:
    """A search whose trial `t` ends with eval/mAP `values[t]` (None: no metric yet)."""
    parent = open_search_run(
        uri,
        experiment="exp",
        search_name=name,
        settings={"search.num_samples": str(len(values))},
        space_yaml="params: {}\n",
        base_config=config,
        objectives=[("eval/mAP", mode)],
    )
    client = MlflowClient(uri)
    run_ids = {}
    for trial_id, value in values.items():
        run_id = open_trial_run(
            uri,
            experiment_id=parent.experiment_id,
            parent_run_id=parent.run_id,
            search_name=name,
            trial_id=trial_id,
            config=config,
            searched={"model.pooling.kind": trial_id},
        )
        if value is not None:
            client.log_metric(run_id, "eval/mAP", value, step=1)
            client.log_metric(run_id, "eval/rank1", value / 2, step=1)
            close_trial_run(uri, run_id, "completed")
        run_ids[trial_id] = run_id
    return parent.run_id, run_ids


def expected_order(uri: str, parent: str, reverse: bool = True) -> list[str]:
    """The parent's children by eval/mAP read directly from MLflow, metric-less ones last."""
    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    scored = [r for r in runs if "eval/mAP" in r.data.metrics]
    rest = sorted(
        (r for r in runs if "eval/mAP" not in r.data.metrics), key=lambda r: r.info.start_time
    )
    scored.sort(key=lambda r: r.data.metrics["eval/mAP"], reverse=reverse)
    return [r.info.run_id for r in scored + rest]


def test_latest_search_ranked_by_its_objective(uri: str, config: ReidConfig) -> None:
    make_search(uri, config, "old", {"a": 0.9})
    parent, run_ids = make_search(uri, config, "new", {"avg": 0.3, "max": None, "gem": 0.6})
    comparison = compare_trials(uri, "exp")
    assert comparison.parent_run_id == parent and comparison.search_name == "new"
    assert comparison.objectives == (("eval/mAP", "max"),)
    assert comparison.total == 3
    assert [row.run_id for row in comparison.rows] == expected_order(uri, parent)
    assert [row.trial_id for row in comparison.rows] == ["gem", "avg", "max"]
    best = comparison.rows[0]
    stored = MlflowClient(uri).get_run(run_ids["gem"])
    assert best.metrics == stored.data.metrics
    assert best.params == {"model.pooling.kind": "gem"}
    assert best.trial_status == stored.data.tags["reid.trial_status"] == "completed"
    assert comparison.rows[2].trial_status == "running"


def test_search_named_by_id_or_name_and_top(uri: str, config: ReidConfig) -> None:
    old, _ = make_search(uri, config, "old", {"a": 0.1, "b": 0.4, "c": 0.2}, mode="min")
    make_search(uri, config, "new", {"x": 0.5})
    by_name = compare_trials(uri, "exp", search="old", top=2)
    by_id = compare_trials(uri, "exp", search=old, top=2)
    assert by_name == by_id
    assert by_name.total == 3 and by_name.objectives == (("eval/mAP", "min"),)
    assert [row.run_id for row in by_name.rows] == expected_order(uri, old, reverse=False)[:2]


def test_failed_trials_rank_last_and_two_objectives_mark_the_pareto_front(
    uri: str, config: ReidConfig
) -> None:
    parent = open_search_run(
        uri,
        experiment="exp",
        search_name="two",
        settings={},
        space_yaml="params: {}\n",
        base_config=config,
        objectives=[("eval/mAP", "max"), ("model/params", "min")],
    )
    # trial → (eval/mAP, model/params, outcome). By hand: a (0.5, 100) and c (0.7, 300) are
    # the front of the normally ended trials; b (0.4, 200) is dominated by a; d (0.9, 50)
    # would dominate everything but failed, so it is neither first nor on the front.
    trials = {
        "a": (0.5, 100.0, "completed"),
        "b": (0.4, 200.0, "stopped_early"),
        "c": (0.7, 300.0, "completed"),
        "d": (0.9, 50.0, "failed"),
    }
    client = MlflowClient(uri)
    run_ids = {}
    for trial_id, (mean_ap, params, outcome) in trials.items():
        run_id = open_trial_run(
            uri,
            experiment_id=parent.experiment_id,
            parent_run_id=parent.run_id,
            search_name="two",
            trial_id=trial_id,
            config=config,
            searched={"model.pooling.kind": trial_id},
        )
        client.log_metric(run_id, "eval/mAP", mean_ap, step=1)
        client.log_metric(run_id, "model/params", params, step=0)
        close_trial_run(uri, run_id, outcome, "boom")  # type: ignore[arg-type]
        run_ids[trial_id] = run_id
    comparison = compare_trials(uri, "exp")
    assert comparison.objectives == (("eval/mAP", "max"), ("model/params", "min"))
    assert [row.trial_id for row in comparison.rows] == ["c", "a", "b", "d"]
    assert comparison.pareto == {run_ids["a"], run_ids["c"]}
    # The front is over every trial, whatever --top shows.
    assert compare_trials(uri, "exp", top=1).pareto == comparison.pareto


@pytest.mark.parametrize(
    ("experiment", "search", "message"),
    [
        ("nope", None, r"^MLflow experiment 'nope' does not exist$"),
        ("empty", None, r"^MLflow experiment 'empty' holds no search run$"),
        (
            "exp",
            "missing",
            r"^MLflow experiment 'exp' holds no search run with id or name 'missing'$",
        ),
        ("exp", "0" * 32, r"holds no search run with id or name '0{32}'$"),
    ],
)
def test_unknown_experiment_or_search(
    uri: str, config: ReidConfig, experiment: str, search: str | None, message: str
) -> None:
    make_search(uri, config, "s", {"a": 0.5})
    MlflowClient(uri).create_experiment("empty")
    with pytest.raises(ReidError, match=message):
        compare_trials(uri, experiment, search=search)


def test_a_train_run_is_not_a_search(uri: str, config: ReidConfig) -> None:
    from reid_platform.tracking.runs import open_training_run

    run = open_training_run(tracking_uri=uri, experiment="exp", run_name="t", config=config)
    with pytest.raises(ReidError, match="holds no search run"):
        compare_trials(uri, "exp")
    with pytest.raises(ReidError, match="holds no search run with id or name"):
        compare_trials(uri, "exp", search=run.run_id)


def test_missing_store_and_bad_top(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    with pytest.raises(ReidError, match="does not exist"):
        compare_trials(missing, "exp")
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(ReidError, match="--top must be at least 1"):
        compare_trials(missing, "exp", top=0)
