"""Opening the one MLflow run of a training run by name, and closing it.

A run is found again by its `reid.run_name` tag, so relaunching `reid train` with the same name
continues the same MLflow run; its `reid.config_hash` tag stops a changed config from silently
continuing an old run.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from mlflow.entities import Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import (
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
)

from reid_platform.config.flatten import config_hash, flatten, to_yaml
from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.connection import (
    bounded_http_retries,
    check_tracking_store,
    first_line,
)
from reid_platform.tracking.environment import environment_tags
from reid_platform.tracking.layout import (
    CONFIG_ARTIFACT,
    CONFIG_HASH_TAG,
    KIND_TAG,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
)
from reid_platform.tracking.retry import call_with_retries

logger = logging.getLogger(__name__)

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]
T = TypeVar("T")
_TRUNCATION_MARK = "..."


@dataclass(frozen=True)
class TrackedRun:
    """The MLflow run a training run logs into; `resumed` when it existed before this launch.

    previous_status: the resumed run's status before this launch (FINISHED when a completed
    run is relaunched, KILLED or FAILED after an interruption, RUNNING after a crash); None
    for a new run.
    """

    run_id: str
    experiment_id: str
    resumed: bool
    previous_status: str | None = None


def experiment_id_for(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return str(client.create_experiment(name))
        except MlflowException as error:
            # Another launch created it between the lookup and here.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
            assert experiment is not None
    if experiment.lifecycle_stage == "deleted":
        raise ReidError(
            f"MLflow experiment {name!r} is deleted; restore it or choose another experiment name"
        )
    return str(experiment.experiment_id)


def quoted(value: str) -> str:
    # MLflow's filter grammar has no escape sequences: a value is quoted with whichever quote
    # character it does not contain.
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ReidError(f"run name {value!r} contains both quote characters")


def _find_run(client: MlflowClient, experiment_id: str, run_name: str) -> Run | None:
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_NAME_TAG}` = {quoted(run_name)}",
        order_by=["attributes.start_time ASC"],
        max_results=2,
    )
    if len(runs) > 1:
        logger.warning("several runs are named %r; continuing the oldest", run_name)
    return runs[0] if runs else None


def _check_continuable(run: Run, run_name: str, digest: str, kind: str) -> None:
    tags = run.data.tags
    if tags.get(CONFIG_HASH_TAG) != digest:
        raise ReidError(
            f"run name {run_name!r} belongs to MLflow run {run.info.run_id} with a different "
            f"config (hash {tags.get(CONFIG_HASH_TAG)} vs {digest}); choose a new run name"
        )
    if tags.get(KIND_TAG) != kind:
        raise ReidError(
            f"run name {run_name!r} belongs to MLflow run {run.info.run_id} of kind "
            f"{tags.get(KIND_TAG)!r}, not {kind!r}; choose a new run name"
        )


def param_value(key: str, value: str) -> str:
    if len(value) <= MAX_PARAM_VAL_LENGTH:
        return value
    # config.yaml keeps the full value; MLflow rejects longer params.
    logger.warning("param %s is %d characters long; logging it truncated", key, len(value))
    return value[: MAX_PARAM_VAL_LENGTH - len(_TRUNCATION_MARK)] + _TRUNCATION_MARK


def chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def complete_run(
    client: MlflowClient, run: Run, config: ReidConfig, params: Mapping[str, str] | None = None
) -> None:
    """Log what a run must hold; a launch that died half-way through is completed by the next.

    params: the run's params (default: the whole flattened config); `config.yaml` always holds
    the whole config.
    """
    run_id = run.info.run_id
    logged = run.data.params
    wanted = flatten(config) if params is None else params
    new_params = [
        Param(key, param_value(key, value)) for key, value in wanted.items() if key not in logged
    ]
    for chunk in chunks(new_params, MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=chunk)
    # The environment of the latest launch: a resumed run may continue on other hardware.
    tags = [RunTag(key, value) for key, value in environment_tags().items()]
    for tag_chunk in chunks(tags, MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, tags=tag_chunk)
    client.log_text(run_id, to_yaml(config), CONFIG_ARTIFACT)


def _open(
    client: MlflowClient,
    *,
    experiment: str,
    run_name: str,
    config: ReidConfig,
    kind: str,
    parent_run_id: str | None,
) -> TrackedRun:
    experiment_id = experiment_id_for(client, experiment)
    digest = config_hash(config)
    run = _find_run(client, experiment_id, run_name)
    previous_status = None if run is None else str(run.info.status)
    if run is not None:
        _check_continuable(run, run_name, digest, kind)
        client.update_run(run.info.run_id, status="RUNNING")
    else:
        tags = {KIND_TAG: kind, RUN_NAME_TAG: run_name, CONFIG_HASH_TAG: digest}
        if parent_run_id is not None:
            tags[PARENT_RUN_TAG] = parent_run_id
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    complete_run(client, run, config)
    return TrackedRun(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        resumed=previous_status is not None,
        previous_status=previous_status,
    )


def open_training_run(
    *,
    tracking_uri: str,
    experiment: str,
    run_name: str,
    config: ReidConfig,
    kind: str = "train",
    parent_run_id: str | None = None,
) -> TrackedRun:
    """The run named `run_name` in `experiment` (created if absent), status RUNNING.

    A new run gets tags reid.kind, reid.run_name, reid.config_hash (and mlflow.parentRunId
    under a parent), the flattened config as params, config.yaml, and `reid.env.*` tags. An
    existing run is resumed only when its config hash and kind match, else `ReidError`.
    """
    if not run_name:
        raise ReidError("the run name is empty")
    check_tracking_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        with bounded_http_retries(max_retries=2, timeout_s=30):
            return _open(
                client,
                experiment=experiment,
                run_name=run_name,
                config=config,
                kind=kind,
                parent_run_id=parent_run_id,
            )
    except MlflowException as error:
        raise ReidError(
            f"opening run {run_name!r} in tracking store {tracking_uri} failed: {first_line(error)}"
        ) from None


def find_training_run(tracking_uri: str, *, experiment: str, run_name: str) -> Run | None:
    """The run named `run_name` in `experiment`, as it is (nothing created or reopened)."""
    check_tracking_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)

    def find() -> Run | None:
        found = client.get_experiment_by_name(experiment)
        if found is None or found.lifecycle_stage == "deleted":
            return None
        return _find_run(client, str(found.experiment_id), run_name)

    return call_with_retries(find, what=f"looking up run {run_name!r}", tracking_uri=tracking_uri)


def finish_run(tracking_uri: str, run_id: str, status: RunStatus) -> None:
    """Mark run `run_id` terminated with `status`, retrying through a short outage."""
    if status not in ("FINISHED", "FAILED", "KILLED"):
        raise ReidError(f"run status {status!r} is not one of FINISHED, FAILED, KILLED")
    client = MlflowClient(tracking_uri=tracking_uri)
    call_with_retries(
        lambda: client.set_terminated(run_id, status),
        what=f"closing run {run_id}",
        tracking_uri=tracking_uri,
    )
