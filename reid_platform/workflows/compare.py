"""Comparing the trials of a search from what MLflow holds (`reid compare`).

The search is the latest parent run (`reid.kind=search`) of the experiment unless one is named
by run id or search name; its trials are ranked by the objective recorded on the parent run.
"""

import re
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.tracking.connection import check_tracking_store, sqlite_path
from reid_platform.tracking.layout import (
    KIND_TAG,
    MODE_TAG,
    OBJECTIVE_TAG,
    RUN_NAME_TAG,
    SEARCH_KIND,
)
from reid_platform.tracking.search_lookup import newest_search
from reid_platform.tracking.search_runs import retrying, trial_rows
from reid_platform.tracking.trial_table import TrialRow, pareto_front, rank_trials, scored_rows

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Comparison:
    """The trials of one search, best first.

    objectives: (metric, mode) pairs, the first one ranks `rows`. rows: at most `top` rows.
    total: how many trials the search has in all. pareto: run ids of the trials on the Pareto
    front of the objectives among all trials ended normally (one objective: the best ones).
    """

    experiment: str
    experiment_id: str
    parent_run_id: str
    search_name: str
    search_status: str
    objectives: tuple[tuple[str, str], ...]
    rows: list[TrialRow]
    total: int
    pareto: frozenset[str]


def _check_store(tracking_uri: str) -> None:
    # Reading only: a sqlite file that does not exist is a wrong URI, not a store to create.
    path = sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        raise ReidError(f"tracking store {tracking_uri} does not exist (no file {path})")
    check_tracking_store(tracking_uri)


def experiment_id_for(client: MlflowClient, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        raise ReidError(f"MLflow experiment {experiment!r} does not exist")
    return str(found.experiment_id)


def _by_run_id(client: MlflowClient, experiment_id: str, run_id: str) -> Run | None:
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None
    if run.info.experiment_id != experiment_id or run.data.tags.get(KIND_TAG) != SEARCH_KIND:
        return None
    return run


def quoted(value: str) -> str:
    if "'" in value:
        raise ReidError(f"search name {value!r} contains a quote character")
    return f"'{value}'"


def _find_search(
    client: MlflowClient, experiment: str, experiment_id: str, search: str | None
) -> Run:
    if search is None:
        latest = newest_search(client, [experiment_id])
        if latest is None:
            raise ReidError(f"MLflow experiment {experiment!r} holds no search run")
        return latest
    run = _by_run_id(client, experiment_id, search) if _RUN_ID.match(search) else None
    if run is None:
        named = f"tags.`{RUN_NAME_TAG}` = {quoted(search)}"
        run = newest_search(client, [experiment_id], named)
    if run is None:
        raise ReidError(
            f"MLflow experiment {experiment!r} holds no search run with id or name {search!r}"
        )
    return run


def search_objectives(run: Run) -> tuple[tuple[str, str], ...]:
    """The (metric, mode) objectives recorded on a search's parent run, the ranking one first."""
    params = run.data.params
    listed: list[tuple[str, str]] = []
    while f"search.objective.{len(listed)}.metric" in params:
        index = len(listed)
        mode = params.get(f"search.objective.{index}.mode", "max")
        listed.append((params[f"search.objective.{index}.metric"], mode))
    tags = run.data.tags
    if OBJECTIVE_TAG not in tags:
        if not listed:
            raise ReidError(f"search run {run.info.run_id} records no objective")
        return tuple(listed)
    first = (tags[OBJECTIVE_TAG], tags.get(MODE_TAG, "max"))
    return (first, *(objective for objective in listed if objective != first))


def compare_trials(
    tracking_uri: str, experiment: str, *, search: str | None = None, top: int | None = None
) -> Comparison:
    """The trials of a search in `experiment` ranked by its objective (missing values last).

    search: a parent run id or search name; default the latest search of the experiment.
    top: keep the best `top` trials only.
    """
    if top is not None and top < 1:
        raise ReidError(f"--top must be at least 1, got {top}")
    _check_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)

    def find() -> tuple[str, Run]:
        experiment_id = experiment_id_for(client, experiment)
        return experiment_id, _find_search(client, experiment, experiment_id, search)

    experiment_id, parent = retrying(
        tracking_uri, f"finding the search in experiment {experiment!r}", find
    )
    objectives = search_objectives(parent)
    metric, mode = objectives[0]
    rows = trial_rows(tracking_uri, parent.info.run_id)
    ranked = rank_trials(rows, metric, mode)
    # Over every trial, not only the `top` shown: a shown row is on the front or it is not.
    front = pareto_front(scored_rows(rows, [m for m, _ in objectives]), objectives)
    return Comparison(
        experiment=experiment,
        experiment_id=experiment_id,
        parent_run_id=parent.info.run_id,
        search_name=parent.data.tags.get(RUN_NAME_TAG, parent.info.run_name or ""),
        search_status=str(parent.info.status),
        objectives=objectives,
        rows=ranked[:top] if top is not None else ranked,
        total=len(ranked),
        pareto=frozenset(row.run_id for row in front),
    )
