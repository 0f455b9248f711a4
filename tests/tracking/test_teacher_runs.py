"""Which run teaches a promotion, read from a real sqlite MLflow store of hand-made runs."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.tracking.runs import experiment_id_for
from reid_platform.tracking.teacher_runs import resolve_teacher_run


def make_run(uri: str, kind: str, tags: dict[str, str] | None = None, **more: str) -> str:
    client = MlflowClient(uri)
    experiment = experiment_id_for(client, more.get("experiment", "quickstart"))
    run = client.create_run(experiment, tags={"reid.kind": kind, **(tags or {})})
    client.set_terminated(run.info.run_id, more.get("status", "FINISHED"))
    return run.info.run_id


def trained_trial(uri: str, folder: Path, parent: str | None = None) -> str:
    tags = {"mlflow.parentRunId": parent} if parent else {}
    run_id = make_run(uri, "trial", tags)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pt").write_bytes(b"weights")
    MlflowClient(uri).log_artifact(run_id, str(folder / "model.pt"), "checkpoints")
    return run_id


def search_with_best(uri: str, best: str, name: str) -> str:
    search = make_run(uri, "search", {"reid.best_run_id": best, "reid.run_name": name})
    MlflowClient(uri).set_tag(best, "mlflow.parentRunId", search)
    return search


def test_without_a_search_named_the_latest_search_of_the_experiment_teaches(
    sqlite_uri: str, tmp_path: Path
) -> None:
    older = search_with_best(sqlite_uri, trained_trial(sqlite_uri, tmp_path / "a"), "older")
    best = trained_trial(sqlite_uri, tmp_path / "b")
    newer = search_with_best(sqlite_uri, best, "newer")
    source = resolve_teacher_run(sqlite_uri, search=None, teacher=None, experiment="quickstart")
    assert source.teacher.info.run_id == best and source.best
    assert source.search is not None and source.search.info.run_id == newer != older
    assert "best trial of search newer" in source.describe() and " UTC)" in source.describe()
    by_name = resolve_teacher_run(sqlite_uri, search="older", teacher=None, experiment="x")
    assert by_name.search is not None and by_name.search.info.run_id == older
    with pytest.raises(ReidError, match="'elsewhere' holds no search to promote from"):
        resolve_teacher_run(sqlite_uri, search=None, teacher=None, experiment="elsewhere")


def test_a_teacher_named_by_hand_keeps_the_search_only_when_it_is_one_of_its_trials(
    sqlite_uri: str, tmp_path: Path
) -> None:
    best = trained_trial(sqlite_uri, tmp_path / "a")
    search = search_with_best(sqlite_uri, best, "s")
    sibling = trained_trial(sqlite_uri, tmp_path / "b", parent=search)
    stranger = trained_trial(sqlite_uri, tmp_path / "c")
    of_search = resolve_teacher_run(sqlite_uri, search="s", teacher=sibling, experiment="q")
    assert of_search.search is not None and not of_search.best
    assert "a trial of search s" in of_search.describe()
    other = resolve_teacher_run(sqlite_uri, search="s", teacher=stranger, experiment="q")
    assert other.search is None and other.describe() == f"run {stranger}"
