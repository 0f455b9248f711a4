"""Which run teaches a promotion: a search's best trial, or a run named by hand.

    source = resolve_teacher_run(uri, search="quickstart-search-…", teacher=None)

The search is found by parent run id or by search name, in any experiment of the store; it must
have FINISHED and name its best trial (`reid.best_run_id`, the leader on the first objective,
measured on the validation split). The teacher must be a FINISHED run holding its model file:
a best trial that ASHA stopped or that failed is refused, naming it, and never silently
replaced by another trial (`teacher` overrides it explicitly).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.tracking.layout import (
    BEST_RUN_TAG,
    DISTILL_KIND,
    KIND_TAG,
    MODEL_CHECKPOINT,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    SEARCH_KIND,
    TRIAL_ID_TAG,
    TRIAL_KIND,
    TRIAL_STATUS_TAG,
)
from reid_platform.tracking.retry import call_with_retries
from reid_platform.tracking.run_artifacts import check_store_exists, get_run
from reid_platform.tracking.runs import quoted
from reid_platform.tracking.search_lookup import newest_search

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
TEACHER_KINDS = (TRIAL_KIND, "train", DISTILL_KIND)


@dataclass(frozen=True)
class TeacherSource:
    """The teacher's run and the search it comes from (None with `--teacher` alone, or when
    the run named by `--teacher` is no trial of the search named); `best`: it is that search's
    best trial."""

    teacher: Run
    search: Run | None
    best: bool = False

    def describe(self) -> str:
        """`run X, best trial of search NAME (run Y, started …)` for the report."""
        text = f"run {self.teacher.info.run_id}"
        if self.search is None:
            return text
        search = self.search
        name = search.data.tags.get(RUN_NAME_TAG, search.info.run_id)
        started = datetime.fromtimestamp(search.info.start_time / 1000, UTC)
        role = "best trial" if self.best else "a trial"
        return (
            f"{text}, {role} of search {name} (run {search.info.run_id}, started "
            f"{started:%Y-%m-%d %H:%M} UTC)"
        )


def _by_name(client: MlflowClient, name: str) -> Run | None:
    active = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    named = f"tags.`{RUN_NAME_TAG}` = {quoted(name)}"
    return newest_search(client, [e.experiment_id for e in active], named)


def find_search(tracking_uri: str, id_or_name: str) -> Run:
    """The search parent run with this run id or search name; refuses other runs."""
    check_store_exists(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    run: Run | None = None
    if _RUN_ID.match(id_or_name):
        try:
            run = client.get_run(id_or_name)
        except MlflowException:
            run = None
    if run is None:
        run = _by_name(client, id_or_name)
    if run is None:
        raise ReidError(
            f"no search run has the id or name {id_or_name!r} in the tracking store {tracking_uri}"
        )
    kind = run.data.tags.get(KIND_TAG)
    if kind != SEARCH_KIND:
        raise ReidError(
            f"run {run.info.run_id} is a {kind or 'untagged'} run, not a search; to distil from "
            f"it, give it as --teacher {run.info.run_id}"
        )
    return run


def _describe(run: Run) -> str:
    tags = run.data.tags
    trial = tags.get(TRIAL_ID_TAG)
    named = f"trial {trial} (run {run.info.run_id})" if trial else f"run {run.info.run_id}"
    outcome = tags.get(TRIAL_STATUS_TAG)
    return f"{named}, {outcome.replace('_', ' ')}" if outcome else named


def check_teacher_run(run: Run, tracking_uri: str) -> None:
    """Refuse a run that cannot teach: not a training run, not FINISHED, or without its model
    file (an ASHA-stopped trial keeps only its config)."""
    kind = run.data.tags.get(KIND_TAG)
    if kind not in TEACHER_KINDS:
        raise ReidError(
            f"run {run.info.run_id} is a {kind or 'untagged'} run; a teacher is a trial, train "
            "or distill run"
        )
    if run.info.status != "FINISHED":
        raise ReidError(f"{_describe(run)} ended {run.info.status}, so it cannot teach")
    client = MlflowClient(tracking_uri=tracking_uri)
    listed = call_with_retries(
        lambda: {e.path for e in client.list_artifacts(run.info.run_id, "checkpoints")},
        what=f"listing the checkpoints of run {run.info.run_id}",
        tracking_uri=tracking_uri,
    )
    if MODEL_CHECKPOINT not in listed:
        raise ReidError(
            f"{_describe(run)} has no {MODEL_CHECKPOINT} (a trial stopped early keeps none), so "
            "it cannot teach; choose a finished run with --teacher RUN_ID"
        )


def latest_search(tracking_uri: str, experiment: str) -> Run:
    """The most recently started search of MLflow experiment `experiment`."""
    check_store_exists(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    run = newest_search(client, [found.experiment_id]) if found is not None else None
    if run is None:
        raise ReidError(
            f"MLflow experiment {experiment!r} holds no search to promote from; name one, or "
            "a teacher with --teacher RUN_ID"
        )
    return run


def resolve_teacher_run(
    tracking_uri: str, *, search: str | None, teacher: str | None, experiment: str
) -> TeacherSource:
    """The teacher of a promotion: `teacher` when given, else the best trial of `search` (a
    run id or name; None with no `teacher`: the latest search of `experiment`)."""
    if search is None and teacher is None:
        search_run: Run | None = latest_search(tracking_uri, experiment)
    else:
        search_run = find_search(tracking_uri, search) if search is not None else None
    if search_run is not None and search_run.info.status != "FINISHED":
        raise ReidError(
            f"search {search_run.data.tags.get(RUN_NAME_TAG, search_run.info.run_id)} is "
            f"{search_run.info.status}; finish it (reid search --name NAME --resume) before "
            "promoting its best trial"
        )
    if teacher is None:
        assert search_run is not None
        teacher = search_run.data.tags.get(BEST_RUN_TAG)
        if teacher is None:
            raise ReidError(
                f"search {search_run.info.run_id} has no best trial (no trial reported its "
                "objective); choose a teacher with --teacher RUN_ID"
            )
    teacher_run = get_run(teacher, tracking_uri)
    check_teacher_run(teacher_run, tracking_uri)
    if search_run is None:
        return TeacherSource(teacher_run, None)
    best = search_run.data.tags.get(BEST_RUN_TAG) == teacher
    of_search = best or teacher_run.data.tags.get(PARENT_RUN_TAG) == search_run.info.run_id
    return TeacherSource(teacher_run, search_run if of_search else None, best)
