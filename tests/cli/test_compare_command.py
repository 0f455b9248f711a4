"""`reid compare`: the table and the JSON match what MLflow holds, read back directly."""

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.cli.compare_command import format_metric, short_names
from reid_platform.cli.main import main
from reid_platform.config.loading import load_config
from reid_platform.tracking.search_runs import close_trial_run, open_search_run, open_trial_run

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"
# trial id → (searched params, eval/mAP, eval/rank1, outcome)
TRIALS: dict[str, tuple[dict[str, Any], float, float, str]] = {
    "t1": ({"model.classifier.kind": "linear"}, 0.25, 0.5, "completed"),
    "t2": (
        {"model.classifier.kind": "arcface", "model.classifier.arcface.margin": 0.4},
        0.75,
        0.875,
        "stopped_early",
    ),
    "t3": (
        {"model.classifier.kind": "circle", "model.classifier.circle.margin": 0.3},
        0.5,
        0.625,
        "failed",
    ),
}


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(tracking URI, parent run id) of a 3-trial search in experiment `exp`."""
    root = tmp_path_factory.mktemp("compare-cli")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = load_config(QUICKSTART)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        parent = open_search_run(
            uri,
            experiment="exp",
            search_name="cli-search",
            settings={},
            space_yaml="params: {}\n",
            base_config=config,
            objectives=[("eval/mAP", "max")],
        )
        client = MlflowClient(uri)
        for trial_id, (searched, mean_ap, rank1, outcome) in TRIALS.items():
            run_id = open_trial_run(
                uri,
                experiment_id=parent.experiment_id,
                parent_run_id=parent.run_id,
                search_name="cli-search",
                trial_id=trial_id,
                config=config,
                searched=searched,
            )
            client.log_metric(run_id, "eval/mAP", mean_ap, step=2)
            client.log_metric(run_id, "eval/rank1", rank1, step=2)
            close_trial_run(uri, run_id, outcome, "boom")  # type: ignore[arg-type]
    return uri, parent.run_id


def _stored(uri: str, parent: str) -> list[dict[str, object]]:
    """Each child run as MLflow holds it: completed and stopped-early trials first, then the
    others (failed), each group by best eval/mAP first."""
    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    normal = ("completed", "stopped_early")
    runs.sort(
        key=lambda run: (
            run.data.tags["reid.trial_status"] not in normal,
            -run.data.metrics["eval/mAP"],
        )
    )
    return [
        {
            "trial_id": run.data.tags["reid.trial_id"],
            "run_id": run.info.run_id,
            "trial_status": run.data.tags["reid.trial_status"],
            "params": json.loads(run.data.tags["reid.searched_params"]),
            "metrics": run.data.metrics,
        }
        for run in runs
    ]


def test_json_matches_mlflow(search: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    uri, parent = search
    assert main(["compare", "exp", "--tracking-uri", uri, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    keys = ("trial_id", "run_id", "trial_status", "params", "metrics")
    assert [{key: item[key] for key in keys} for item in printed] == _stored(uri, parent)
    assert [item["rank"] for item in printed] == [1, 2, 3]
    # The failed t3 holds a better mAP than t1 but ranks after it.
    assert [item["trial_id"] for item in printed] == ["t2", "t1", "t3"]
    # One objective: the front is the best normally ended trial.
    assert [item["pareto"] for item in printed] == [True, False, False]


def test_table_lists_the_top_trials(
    search: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    uri, parent = search
    args = ["compare", "exp", "--tracking-uri", uri, "--top", "2", "--search", "cli-search"]
    assert main(args) == 0
    out = capsys.readouterr().out
    stored = _stored(uri, parent)
    rows = [line for line in out.splitlines() if line.startswith("│")]
    # The best two by eval/mAP, in order, each on one row with its full run id.
    assert len(rows) == 2
    assert [str(stored[i]["run_id"]) in rows[i] for i in range(2)] == [True, True]
    assert str(stored[2]["run_id"]) not in out
    assert "2 of 3 trials by eval/mAP (max)" in out
    cells = [cell.strip() for cell in rows[0].strip("│").split("│")]
    assert cells == [
        "1",
        "t2",
        str(stored[0]["run_id"]),
        "stopped_early",
        "0.4",
        "arcface",
        "75.00%",
        "87.50%",
        "2",
    ]
    cells = [cell.strip() for cell in rows[1].strip("│").split("│")]
    second = [str(stored[1]["run_id"]), "completed", "—", "linear", "25.00%", "50.00%", "2"]
    assert cells == ["2", "t1", *second]
    header = next(line for line in out.splitlines() if "run id" in line)
    # Only the shown trials' params: the failed circle trial is third, not shown.
    assert "arcface.margin" in header and "circle.margin" not in header
    assert "classifier.kind" in header and "mAP ▼" in header


# trial id → (eval/mAP, model/params, outcome). By hand, for max mAP / min params: p1 and p3
# are the front; p2 is dominated by p1; p4 beats both but failed, so it is off the front.
PARETO_TRIALS = {
    "p1": (0.5, 100.0, "completed"),
    "p2": (0.4, 200.0, "completed"),
    "p3": (0.7, 300.0, "stopped_early"),
    "p4": (0.9, 50.0, "failed"),
}


@pytest.fixture(scope="module")
def pareto_search(search: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A two-objective search in experiment `exp2` of the same store; its parent run id."""
    uri, _ = search
    config = load_config(QUICKSTART)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("compare-pareto"))
        parent = open_search_run(
            uri,
            experiment="exp2",
            search_name="two-objectives",
            settings={},
            space_yaml="params: {}\n",
            base_config=config,
            objectives=[("eval/mAP", "max"), ("model/params", "min")],
        )
        client = MlflowClient(uri)
        for trial_id, (mean_ap, params, outcome) in PARETO_TRIALS.items():
            run_id = open_trial_run(
                uri,
                experiment_id=parent.experiment_id,
                parent_run_id=parent.run_id,
                search_name="two-objectives",
                trial_id=trial_id,
                config=config,
                searched={"model.pooling.kind": trial_id},
            )
            client.log_metric(run_id, "eval/mAP", mean_ap, step=1)
            client.log_metric(run_id, "model/params", params, step=1)
            close_trial_run(uri, run_id, outcome, "boom")  # type: ignore[arg-type]
    return parent.run_id


def test_two_objectives_mark_the_pareto_front(
    search: tuple[str, str], pareto_search: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, _ = search
    assert main(["compare", "exp2", "--tracking-uri", uri, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [item["trial_id"] for item in printed] == ["p3", "p1", "p2", "p4"]
    assert {item["trial_id"]: item["pareto"] for item in printed} == {
        "p1": True,
        "p2": False,
        "p3": True,
        "p4": False,
    }
    assert main(["compare", "exp2", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "run id" in line)
    assert header.strip("┃ ").split("┃")[-1].strip() == "pareto"
    rows = [line for line in out.splitlines() if line.startswith("│")]
    marks = {
        cells[1]: cells[-1]
        for cells in ([c.strip() for c in row.strip("│").split("│")] for row in rows)
    }
    assert marks == {"p3": "✓", "p1": "✓", "p2": "", "p4": ""}
    # One objective: no pareto column.
    assert main(["compare", "exp", "--tracking-uri", uri]) == 0
    assert "pareto" not in capsys.readouterr().out


def test_unknown_experiment_exits_2(
    search: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    uri, _ = search
    assert main(["compare", "nope", "--tracking-uri", uri]) == 2
    assert "MLflow experiment 'nope' does not exist" in capsys.readouterr().err


def test_short_names_and_metric_format() -> None:
    paths = [
        "model.classifier.arcface.margin",
        "model.classifier.circle.margin",
        "model.pooling.kind",
    ]
    assert short_names(paths) == {
        "model.classifier.arcface.margin": "arcface.margin",
        "model.classifier.circle.margin": "circle.margin",
        "model.pooling.kind": "pooling.kind",
    }
    assert format_metric("eval/mAP", 0.12345) == "12.35%"
    assert format_metric("model/params", 1234567.0) == "1,234,567"
    assert format_metric("eval/mAP", None) == "—"
