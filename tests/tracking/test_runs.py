"""Opening, resuming and closing a training run in a real sqlite MLflow store."""

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from reid_platform.config.flatten import active_dump, config_hash, flatten
from reid_platform.config.loading import load_config
from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.layout import CONFIG_ARTIFACT
from reid_platform.tracking.runs import finish_run, open_training_run


def test_new_run_holds_params_tags_and_config(
    sqlite_uri: str, quickstart_config: ReidConfig
) -> None:
    run = open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="first", config=quickstart_config
    )
    assert not run.resumed
    stored = MlflowClient(sqlite_uri).get_run(run.run_id)
    flat = flatten(quickstart_config)
    assert len(flat) > 100  # more than one log_batch of params
    assert stored.data.params == flat
    tags = stored.data.tags
    assert tags["reid.kind"] == "train"
    assert tags["reid.run_name"] == "first"
    assert tags["reid.config_hash"] == config_hash(quickstart_config)
    assert tags["mlflow.runName"] == "first"
    assert "mlflow.parentRunId" not in tags
    assert tags["reid.env.python"] and tags["reid.env.mlflow"]
    assert stored.info.status == "RUNNING"
    path = Path(MlflowClient(sqlite_uri).download_artifacts(run.run_id, CONFIG_ARTIFACT))
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == active_dump(quickstart_config)
    assert load_config(path) == quickstart_config


def test_same_name_and_config_resumes(sqlite_uri: str, quickstart_config: ReidConfig) -> None:
    first = open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="again", config=quickstart_config
    )
    finish_run(sqlite_uri, first.run_id, "KILLED")
    second = open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="again", config=quickstart_config
    )
    assert second.resumed and second.run_id == first.run_id
    assert first.previous_status is None and second.previous_status == "KILLED"
    assert second.experiment_id == first.experiment_id
    assert MlflowClient(sqlite_uri).get_run(first.run_id).info.status == "RUNNING"


def test_same_name_other_config_is_refused(
    sqlite_uri: str, quickstart_config: ReidConfig, changed_config: ReidConfig
) -> None:
    open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="taken", config=quickstart_config
    )
    other = changed_config
    with pytest.raises(
        ReidError, match=r"run name 'taken' belongs to MLflow run .* different config"
    ):
        open_training_run(tracking_uri=sqlite_uri, experiment="exp", run_name="taken", config=other)
    # the same name in another experiment is another run
    fresh = open_training_run(
        tracking_uri=sqlite_uri, experiment="other", run_name="taken", config=other
    )
    assert not fresh.resumed


def test_child_run_names_its_parent(sqlite_uri: str, quickstart_config: ReidConfig) -> None:
    parent = open_training_run(
        tracking_uri=sqlite_uri,
        experiment="exp",
        run_name="search",
        config=quickstart_config,
        kind="search",
    )
    child = open_training_run(
        tracking_uri=sqlite_uri,
        experiment="exp",
        run_name="it's trial 1",
        config=quickstart_config,
        kind="trial",
        parent_run_id=parent.run_id,
    )
    tags = MlflowClient(sqlite_uri).get_run(child.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.run_id and tags["reid.kind"] == "trial"
    with pytest.raises(ReidError, match="of kind 'trial', not 'train'"):
        open_training_run(
            tracking_uri=sqlite_uri,
            experiment="exp",
            run_name="it's trial 1",
            config=quickstart_config,
        )


def test_finish_sets_the_status(sqlite_uri: str, quickstart_config: ReidConfig) -> None:
    run = open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="done", config=quickstart_config
    )
    finish_run(sqlite_uri, run.run_id, "FAILED")
    assert MlflowClient(sqlite_uri).get_run(run.run_id).info.status == "FAILED"
