"""A search's parent and child runs in a real MLflow store: opening, closing, summarising.

Everything written is read back with a plain `MlflowClient`, never through the functions tested.
"""

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from reid_platform.config.flatten import active_dump, flatten
from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.runs import open_training_run
from reid_platform.tracking.search_runs import (
    close_trial_run,
    find_trial_run,
    finish_search_run,
    open_search_run,
    open_trial_run,
)
from reid_platform.tracking.trial_table import TrialRow, rank_trials

SPACE_YAML = "params:\n  model.pooling.kind: {type: choice, values: [avg, max]}\n"
OBJECTIVES = [("eval/mAP", "max")]
SETTINGS = {"search.num_samples": "4", "search.scheduler": "asha", "search.config": "q.yaml"}


def _open_parent(
    uri: str,
    config: ReidConfig,
    name: str = "s1",
    space: str = SPACE_YAML,
    *,
    resume: bool = False,
) -> str:
    return open_search_run(
        uri,
        experiment="exp",
        search_name=name,
        settings=SETTINGS,
        space_yaml=space,
        base_config=config,
        objectives=OBJECTIVES,
        resume=resume,
    ).run_id


def _runs_named(uri: str, name: str) -> list[str]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("exp")
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"attributes.run_name = '{name}'"
    )
    return [run.info.run_id for run in runs]


def _children(uri: str, parent_run_id: str) -> list[str]:
    client = MlflowClient(uri)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )
    return sorted(run.info.run_id for run in runs)


def _artifact_text(uri: str, run_id: str, path: str) -> str:
    local = MlflowClient(uri).download_artifacts(run_id, path)
    return Path(local).read_text(encoding="utf-8")


def test_parent_run_layout_and_resume(sqlite_uri: str, quickstart_config: ReidConfig) -> None:
    first = open_search_run(
        sqlite_uri,
        experiment="exp",
        search_name="s1",
        settings=SETTINGS,
        space_yaml=SPACE_YAML,
        base_config=quickstart_config,
        objectives=[("eval/mAP", "max"), ("model/params", "min")],
    )
    assert not first.resumed
    run = MlflowClient(sqlite_uri).get_run(first.run_id)
    assert run.info.status == "RUNNING" and run.info.run_name == "s1"
    assert run.data.tags["reid.kind"] == "search"
    assert run.data.tags["reid.run_name"] == "s1"
    assert run.data.tags["reid.objective"] == "eval/mAP"
    assert run.data.tags["reid.mode"] == "max"
    assert "mlflow.parentRunId" not in run.data.tags
    assert run.data.params == {
        **SETTINGS,
        "search.objective.0.metric": "eval/mAP",
        "search.objective.0.mode": "max",
        "search.objective.1.metric": "model/params",
        "search.objective.1.mode": "min",
    }
    assert _artifact_text(sqlite_uri, first.run_id, "search_space.yaml") == SPACE_YAML
    config_text = _artifact_text(sqlite_uri, first.run_id, "config.yaml")
    assert yaml.safe_load(config_text) == active_dump(quickstart_config)

    MlflowClient(sqlite_uri).set_terminated(first.run_id, "KILLED")
    again = open_search_run(
        sqlite_uri,
        experiment="exp",
        search_name="s1",
        settings={**SETTINGS, "search.num_samples": "9"},  # a changed setting keeps the first
        space_yaml=SPACE_YAML,
        base_config=quickstart_config,
        objectives=[("eval/mAP", "max"), ("model/params", "min")],
        resume=True,
    )
    assert again.resumed and again.run_id == first.run_id
    resumed = MlflowClient(sqlite_uri).get_run(first.run_id)
    assert resumed.info.status == "RUNNING"
    assert resumed.data.params["search.num_samples"] == "4"


def test_parent_name_with_other_space_or_kind_is_refused(
    sqlite_uri: str, quickstart_config: ReidConfig
) -> None:
    _open_parent(sqlite_uri, quickstart_config)
    with pytest.raises(ReidError, match=r"^search name 's1' .* different search space"):
        _open_parent(
            sqlite_uri, quickstart_config, space=SPACE_YAML + "num_samples: 2\n", resume=True
        )
    open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="t1", config=quickstart_config
    )
    with pytest.raises(ReidError, match=r"^search name 't1' .* of kind 'train'"):
        _open_parent(sqlite_uri, quickstart_config, name="t1", resume=True)


def test_fresh_launch_refuses_an_existing_search_and_resume_needs_one(
    sqlite_uri: str, quickstart_config: ReidConfig
) -> None:
    first = _open_parent(sqlite_uri, quickstart_config)
    MlflowClient(sqlite_uri).set_terminated(first, "KILLED")
    with pytest.raises(
        ReidError,
        match=rf"^search name 's1' belongs to MLflow run {first} already; "
        r"choose another --name, or pass --resume$",
    ):
        _open_parent(sqlite_uri, quickstart_config)
    # Refused before touching it: still the one run, still KILLED.
    assert _runs_named(sqlite_uri, "s1") == [first]
    assert MlflowClient(sqlite_uri).get_run(first).info.status == "KILLED"
    with pytest.raises(
        ReidError, match=r"^search 's2' has no MLflow run in experiment 'exp'; resume it with"
    ):
        _open_parent(sqlite_uri, quickstart_config, name="s2", resume=True)
    assert _runs_named(sqlite_uri, "s2") == []


def test_trial_run_is_created_once(sqlite_uri: str, quickstart_config: ReidConfig) -> None:
    parent = _open_parent(sqlite_uri, quickstart_config)
    experiment_id = MlflowClient(sqlite_uri).get_run(parent).info.experiment_id
    searched = {"model.pooling.kind": "max", "losses.triplet.margin": 0.25}
    ids = [
        open_trial_run(
            sqlite_uri,
            experiment_id=experiment_id,
            parent_run_id=parent,
            search_name="s1",
            trial_id="abc_00001",
            config=quickstart_config,
            searched=searched,
        )
        for _ in range(2)
    ]
    assert ids[0] == ids[1]
    assert _children(sqlite_uri, parent) == [ids[0]]
    run = MlflowClient(sqlite_uri).get_run(ids[0])
    assert run.info.run_name == "s1-abc_00001" and run.info.status == "RUNNING"
    tags = run.data.tags
    assert tags["mlflow.parentRunId"] == parent
    assert tags["reid.kind"] == "trial" and tags["reid.trial_id"] == "abc_00001"
    assert tags["reid.run_name"] == "s1-abc_00001"
    assert json.loads(tags["reid.searched_params"]) == searched
    assert run.data.params == flatten(quickstart_config)
    assert find_trial_run(sqlite_uri, parent, "abc_00001") == ids[0]
    assert find_trial_run(sqlite_uri, parent, "abc_00002") is None
    # The same trial id under another search is another run.
    other = _open_parent(sqlite_uri, quickstart_config, name="s2")
    assert find_trial_run(sqlite_uri, other, "abc_00001") is None


def test_unsampled_params_are_not_logged(sqlite_uri: str, quickstart_config: ReidConfig) -> None:
    parent = _open_parent(sqlite_uri, quickstart_config)
    experiment_id = MlflowClient(sqlite_uri).get_run(parent).info.experiment_id
    # Triplet searched with its margin conditional; this trial sampled triplet off.
    searched = {"losses.triplet.enabled": False}
    # losses.triplet.margin_kind shares the prefix but is not under the path: it is logged.
    unsampled = ["losses.triplet.margin"]
    config = quickstart_config.model_copy(deep=True)
    run_id = open_trial_run(
        sqlite_uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        search_name="s1",
        trial_id="u1",
        config=config,
        searched=searched,
        unsampled=unsampled,
    )
    run = MlflowClient(sqlite_uri).get_run(run_id)
    everything = flatten(config)
    assert set(unsampled) <= set(everything)  # real config paths, left out on purpose
    expected = {key: value for key, value in everything.items() if key not in unsampled}
    assert "losses.triplet.margin_kind" in expected
    assert run.data.params == expected
    assert json.loads(run.data.tags["reid.searched_params"]) == {"losses.triplet.enabled": False}
    # config.yaml stays the complete resolved config.
    assert yaml.safe_load(_artifact_text(sqlite_uri, run_id, "config.yaml")) == active_dump(config)
    # A path prefix leaves out everything under it; reopening adds nothing back.
    again = open_trial_run(
        sqlite_uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        search_name="s1",
        trial_id="u1",
        config=config,
        searched=searched,
        unsampled=unsampled,
    )
    assert again == run_id
    assert MlflowClient(sqlite_uri).get_run(run_id).data.params == expected
    other = open_trial_run(
        sqlite_uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        search_name="s1",
        trial_id="u2",
        config=config,
        searched={},
        unsampled=["losses.triplet"],
    )
    kept = MlflowClient(sqlite_uri).get_run(other).data.params
    assert kept == {k: v for k, v in everything.items() if not k.startswith("losses.triplet.")}


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("completed", "FINISHED"),
        ("stopped_early", "FINISHED"),
        ("failed", "FAILED"),
        ("interrupted", "KILLED"),
    ],
)
def test_close_trial_run(
    sqlite_uri: str, quickstart_config: ReidConfig, outcome: str, status: str
) -> None:
    parent = _open_parent(sqlite_uri, quickstart_config)
    experiment_id = MlflowClient(sqlite_uri).get_run(parent).info.experiment_id

    def open_trial() -> str:
        return open_trial_run(
            sqlite_uri,
            experiment_id=experiment_id,
            parent_run_id=parent,
            search_name="s1",
            trial_id="t0",
            config=quickstart_config,
            searched={},
        )

    run_id = open_trial()
    reason = "RuntimeError: boom\n  at line 3\n" if outcome == "failed" else None
    close_trial_run(sqlite_uri, run_id, outcome, reason)  # type: ignore[arg-type]
    run = MlflowClient(sqlite_uri).get_run(run_id)
    assert run.info.status == status
    assert run.data.tags["reid.trial_status"] == outcome
    if outcome == "failed":
        assert run.data.tags["reid.trial_error"] == "RuntimeError: boom"
    else:
        assert "reid.trial_error" not in run.data.tags
    # A resumed trial is the same run, open again, without the last attempt's ending.
    assert open_trial() == run_id
    reopened = MlflowClient(sqlite_uri).get_run(run_id)
    assert reopened.info.status == "RUNNING"
    assert reopened.data.tags["reid.trial_status"] == "running"
    assert "reid.trial_error" not in reopened.data.tags


def test_close_trial_run_rejects_unknown_outcome(sqlite_uri: str) -> None:
    with pytest.raises(ReidError, match="trial outcome 'done'"):
        close_trial_run(sqlite_uri, "0" * 32, "done")  # type: ignore[arg-type]


def _row(trial_id: str, value: float | None, outcome: str = "completed") -> TrialRow:
    metrics = {} if value is None else {"eval/mAP": value}
    return TrialRow(trial_id, trial_id, trial_id, "FINISHED", outcome, metrics=metrics)


def test_rank_trials_puts_missing_metrics_last() -> None:
    rows = [
        _row("a", 0.2),
        _row("b", None),
        _row("c", 0.7),
        _row("d", float("nan")),
        _row("e", 0.5),
    ]
    assert [r.trial_id for r in rank_trials(rows, "eval/mAP", "max")] == ["c", "e", "a", "b", "d"]
    assert [r.trial_id for r in rank_trials(rows, "eval/mAP", "min")] == ["a", "e", "c", "b", "d"]


def test_rank_trials_puts_failed_and_interrupted_after_scored() -> None:
    rows = [
        _row("failed", 0.9, "failed"),
        _row("low", 0.1, "completed"),
        _row("killed", 0.8, "interrupted"),
        _row("early", 0.4, "stopped_early"),
        _row("open", 0.95, "running"),
        _row("none", None, "failed"),
    ]
    # Normally ended trials by mAP, then the others holding it by mAP, then the rest.
    by_max = ["early", "low", "open", "failed", "killed", "none"]
    assert [r.trial_id for r in rank_trials(rows, "eval/mAP", "max")] == by_max
    by_min = ["low", "early", "killed", "failed", "open", "none"]
    assert [r.trial_id for r in rank_trials(rows, "eval/mAP", "min")] == by_min


# A hand-made search: (trial id, outcome or None for left running, searched params,
# eval/mAP per epoch step). The failed trial's 0.9 must not count as best; the best normal
# trial is t2 (0.6, stopped early at epoch 1).
TRIALS: list[tuple[str, str | None, dict[str, Any], dict[int, float]]] = [
    ("t1", "completed", {"model.classifier.kind": "linear"}, {1: 0.3, 3: 0.5}),
    (
        "t2",
        "stopped_early",
        {"model.classifier.kind": "arcface", "model.classifier.arcface.margin": 0.35},
        {1: 0.6},
    ),
    ("t3", "failed", {"model.classifier.kind": "linear"}, {1: 0.9}),
    ("t4", None, {"model.classifier.kind": "circle"}, {}),
]


def _make_search(uri: str, config: ReidConfig) -> tuple[str, dict[str, str]]:
    parent = _open_parent(uri, config)
    client = MlflowClient(uri)
    experiment_id = client.get_run(parent).info.experiment_id
    run_ids = {}
    for trial_id, outcome, searched, curve in TRIALS:
        run_id = open_trial_run(
            uri,
            experiment_id=experiment_id,
            parent_run_id=parent,
            search_name="s1",
            trial_id=trial_id,
            config=config,
            searched=searched,
        )
        for step, value in curve.items():
            client.log_metric(run_id, "eval/mAP", value, step=step)
            client.log_metric(run_id, "train/loss", 2.0 - value, step=step)
        client.log_metric(run_id, "model/params", 1000.0 + len(trial_id), step=0)
        if outcome is not None:
            close_trial_run(uri, run_id, outcome, "boom" if outcome == "failed" else None)  # type: ignore[arg-type]
        run_ids[trial_id] = run_id
    return parent, run_ids


def _expected_csv_rows(uri: str, parent: str) -> list[dict[str, str]]:
    """trials.csv as computed independently from MLflow's runs, ranked by hand (mAP desc)."""
    client = MlflowClient(uri)
    rows = []
    for run_id in _children(uri, parent):
        run = client.get_run(run_id)
        searched = json.loads(run.data.tags["reid.searched_params"])
        steps = [m.step for key in run.data.metrics for m in client.get_metric_history(run_id, key)]
        row = {
            "trial_id": run.data.tags["reid.trial_id"],
            "run_id": run_id,
            "trial_status": run.data.tags["reid.trial_status"],
            "model.classifier.arcface.margin": str(
                searched.get("model.classifier.arcface.margin", "")
            ),
            "model.classifier.kind": searched["model.classifier.kind"],
            "eval/mAP": str(run.data.metrics.get("eval/mAP", "")),
            "model/params": str(run.data.metrics["model/params"]),
            "epoch": str(max(steps)),
        }
        rows.append(row)

    # Completed and stopped-early trials first, by mAP; then the others by mAP; then none.
    def key(row: dict[str, str]) -> tuple[bool, bool, float]:
        scored = row["trial_status"] in ("completed", "stopped_early")
        return (not row["eval/mAP"], not scored, -float(row["eval/mAP"] or "0"))

    return sorted(rows, key=key)


def test_finish_search_run_summarises_what_mlflow_holds(
    sqlite_uri: str, quickstart_config: ReidConfig
) -> None:
    parent, run_ids = _make_search(sqlite_uri, quickstart_config)
    summary = finish_search_run(sqlite_uri, parent, objectives=OBJECTIVES, status="FINISHED")
    client = MlflowClient(sqlite_uri)
    # The trial nobody closed is interrupted.
    left = client.get_run(run_ids["t4"])
    assert left.info.status == "KILLED" and left.data.tags["reid.trial_status"] == "interrupted"
    stored = client.get_run(parent)
    assert stored.info.status == "FINISHED"
    assert stored.data.tags["reid.best_run_id"] == run_ids["t2"] == summary.best_run_id
    assert stored.data.metrics["best/eval/mAP"] == pytest.approx(0.6)
    assert summary.best == {"eval/mAP": pytest.approx(0.6)}
    # The failed t3 (0.9) ranks after every normally ended trial.
    assert [row.trial_id for row in summary.rows] == ["t2", "t1", "t3", "t4"]

    text = _artifact_text(sqlite_uri, parent, "trials.csv")
    header = text.splitlines()[0].split(",")
    assert header == [
        "trial_id",
        "run_id",
        "trial_status",
        "model.classifier.arcface.margin",
        "model.classifier.kind",
        "eval/mAP",
        "model/params",
        "epoch",
    ]
    expected = _expected_csv_rows(sqlite_uri, parent)
    assert [row["trial_id"] for row in expected] == ["t2", "t1", "t3", "t4"]
    assert expected[-1]["epoch"] == "0"
    assert list(csv.DictReader(io.StringIO(text))) == expected

    artifacts = {f.path for f in client.list_artifacts(parent, "figures")}
    assert artifacts == {"figures/optimization_history.png", "figures/param_importances.png"}
    png = Path(client.download_artifacts(parent, "figures/optimization_history.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Again (as after a resume): same summary, no duplicated points or runs.
    finish_search_run(sqlite_uri, parent, objectives=OBJECTIVES, status="FINISHED")
    assert len(client.get_metric_history(parent, "best/eval/mAP")) == 1
    assert _artifact_text(sqlite_uri, parent, "trials.csv") == text
    assert len(_children(sqlite_uri, parent)) == len(TRIALS)


def test_figures_are_best_effort(
    sqlite_uri: str,
    quickstart_config: ReidConfig,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import reid_platform.tracking.search_figures as figures

    def broken(*_: object) -> list[Path]:
        raise RuntimeError("no font cache\nmore detail")

    # A plotting failure (our own figure code raising, as a missing fANOVA dependency would).
    monkeypatch.setattr(figures, "write_search_figures", broken)
    parent, run_ids = _make_search(sqlite_uri, quickstart_config)
    caplog.set_level(logging.WARNING)
    summary = finish_search_run(sqlite_uri, parent, objectives=OBJECTIVES, status="FINISHED")
    assert summary.figures == []
    assert f"search run {parent}: figures not logged: no font cache" in caplog.text
    client = MlflowClient(sqlite_uri)
    stored = client.get_run(parent)
    assert stored.info.status == "FINISHED"
    assert stored.data.tags["reid.best_run_id"] == run_ids["t2"]
    assert {f.path for f in client.list_artifacts(parent)} >= {"trials.csv"}
    assert client.list_artifacts(parent, "figures") == []


def test_parent_is_closed_even_when_the_summary_fails(
    sqlite_uri: str, quickstart_config: ReidConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reid_platform.tracking.search_runs as search_runs

    def broken(*_: object) -> str:
        raise ValueError("cannot write the table")

    monkeypatch.setattr(search_runs, "trials_csv", broken)
    parent, _ = _make_search(sqlite_uri, quickstart_config)
    with pytest.raises(ValueError, match="cannot write the table"):
        finish_search_run(sqlite_uri, parent, objectives=OBJECTIVES, status="KILLED")
    stored = MlflowClient(sqlite_uri).get_run(parent)
    assert stored.info.status == "KILLED"
    assert "trials.csv" not in {f.path for f in MlflowClient(sqlite_uri).list_artifacts(parent)}


def test_two_objectives_record_the_pareto_front(
    sqlite_uri: str, quickstart_config: ReidConfig
) -> None:
    parent, run_ids = _make_search(sqlite_uri, quickstart_config)
    # model/params (min): t1 = 1002, t2 = 1002; t2 has the better mAP → t2 dominates t1.
    objectives = [("eval/mAP", "max"), ("model/params", "min")]
    summary = finish_search_run(sqlite_uri, parent, objectives=objectives, status="KILLED")
    stored = MlflowClient(sqlite_uri).get_run(parent)
    assert stored.info.status == "KILLED"
    assert json.loads(stored.data.tags["reid.pareto_run_ids"]) == [run_ids["t2"]]
    assert stored.data.metrics["best/model/params"] == 1002.0
    assert summary.best_run_id == run_ids["t2"]


def test_search_over_an_http_server(mlflow_server: Any, quickstart_config: ReidConfig) -> None:
    uri = mlflow_server.uri
    parent = _open_parent(uri, quickstart_config, name="over-http")
    experiment_id = MlflowClient(uri).get_run(parent).info.experiment_id
    run_id = open_trial_run(
        uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        search_name="over-http",
        trial_id="h1",
        config=quickstart_config,
        searched={"model.pooling.kind": "avg"},
    )
    MlflowClient(uri).log_metric(run_id, "eval/mAP", 0.4, step=2)
    close_trial_run(uri, run_id, "completed")
    summary = finish_search_run(uri, parent, objectives=OBJECTIVES, status="FINISHED")
    assert summary.best_run_id == run_id
    assert MlflowClient(uri).get_run(parent).data.tags["reid.best_run_id"] == run_id
    assert summary.figures == ["figures/optimization_history.png"]  # one trial: no importances
