"""The MLflow side of a search: one parent run per search, one nested child run per trial.

Runs are found again by tags, never remembered in memory, so a resumed search (`Tuner.restore`)
or a retried trial continues the same runs: the parent by `reid.run_name` + `reid.kind=search`,
a child by `mlflow.parentRunId` + `reid.trial_id`. Every call goes through `call_with_retries`;
each operation is idempotent, so retrying a half-done one completes it.
"""

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from mlflow.entities import Metric, Param, Run
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH

from reid_platform.config.flatten import config_hash, flatten, to_yaml
from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.connection import check_tracking_store
from reid_platform.tracking.layout import (
    BEST_RUN_TAG,
    CONFIG_ARTIFACT,
    CONFIG_HASH_TAG,
    FIGURES_DIR,
    KIND_TAG,
    MODE_TAG,
    OBJECTIVE_TAG,
    PARENT_RUN_TAG,
    PARETO_RUNS_TAG,
    RUN_NAME_TAG,
    SEARCH_KIND,
    SEARCH_SPACE_ARTIFACT,
    SEARCHED_PARAMS_TAG,
    SPACE_HASH_TAG,
    TRIAL_ERROR_TAG,
    TRIAL_ID_TAG,
    TRIAL_KIND,
    TRIAL_REASON_TAG,
    TRIAL_STATUS_TAG,
    TRIALS_ARTIFACT,
)
from reid_platform.tracking.retry import call_with_retries
from reid_platform.tracking.runs import (
    RunStatus,
    chunks,
    complete_run,
    experiment_id_for,
    param_value,
    quoted,
)
from reid_platform.tracking.trial_table import (
    Objectives,
    TrialRow,
    pareto_front,
    rank_trials,
    scored_rows,
    trial_row,
    trials_csv,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
TrialOutcome = Literal["completed", "stopped_early", "failed", "interrupted"]

RUNNING = "running"
"""`reid.trial_status` of a trial whose run is open (before the Tune callback closes it)."""

_RUN_STATUS: dict[str, RunStatus] = {
    "completed": "FINISHED",
    "stopped_early": "FINISHED",
    "failed": "FAILED",
    "interrupted": "KILLED",
}
_ERROR_LIMIT = 500
_PAGE = 1000


@dataclass(frozen=True)
class SearchRun:
    """The parent run of a search; `resumed` when it existed before this launch."""

    run_id: str
    experiment_id: str
    resumed: bool


@dataclass(frozen=True)
class SearchSummary:
    """What `finish_search_run` wrote: trials ranked by the first objective, best values."""

    parent_run_id: str
    rows: list[TrialRow]
    best_run_id: str | None
    best: dict[str, float]
    figures: list[str]


def retrying(tracking_uri: str, what: str, action: Callable[[], T]) -> T:
    """`call_with_retries`, except that a `ReidError` raised by `action` itself (a sentence
    about the user's input) comes out unchanged rather than inside "<what> failed: ...".
    """
    try:
        return call_with_retries(action, what=what, tracking_uri=tracking_uri)
    except ReidError as error:
        if isinstance(error.__cause__, ReidError):
            raise error.__cause__ from None
        raise


def _client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri)


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    """Every run matching `filter_string`, oldest first, over all result pages."""
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            order_by=["attributes.start_time ASC"],
            max_results=_PAGE,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def objective_params(objectives: Objectives) -> dict[str, str]:
    """`search.objective.<i>.metric` / `.mode` for each objective, in order."""
    params: dict[str, str] = {}
    for index, (metric, mode) in enumerate(objectives):
        params[f"search.objective.{index}.metric"] = metric
        params[f"search.objective.{index}.mode"] = mode
    return params


def _space_hash(space_yaml: str) -> str:
    return hashlib.sha256(space_yaml.encode("utf-8")).hexdigest()[:16]


def _check_search_continuable(
    run: Run, name: str, digest: str, space_digest: str, *, resume: bool
) -> None:
    tags = run.data.tags
    culprit = f"search name {name!r} belongs to MLflow run {run.info.run_id}"
    if tags.get(KIND_TAG) != SEARCH_KIND:
        raise ReidError(f"{culprit} of kind {tags.get(KIND_TAG)!r}; choose another --name")
    if not resume:
        # Continuing it silently would mix two searches' trials under one parent.
        raise ReidError(f"{culprit} already; choose another --name, or pass --resume")
    if tags.get(CONFIG_HASH_TAG) != digest:
        raise ReidError(f"{culprit} with a different base config; choose another --name")
    if tags.get(SPACE_HASH_TAG) != space_digest:
        raise ReidError(f"{culprit} with a different search space; choose another --name")


def _log_new_params(client: MlflowClient, run: Run, params: Mapping[str, str]) -> None:
    """Log the params the run lacks; a changed value (e.g. `--num-samples` on resume) keeps
    the first one, since MLflow params cannot change."""
    logged = run.data.params
    for key, value in params.items():
        if key in logged and logged[key] != param_value(key, value):
            logger.warning("param %s stays %r (this launch: %r)", key, logged[key], value)
    new = [Param(k, param_value(k, v)) for k, v in params.items() if k not in logged]
    for chunk in chunks(new, MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run.info.run_id, params=chunk)


def _open_search(
    client: MlflowClient,
    *,
    experiment: str,
    search_name: str,
    params: Mapping[str, str],
    space_yaml: str,
    base_config: ReidConfig,
    objectives: Objectives,
    resume: bool,
) -> SearchRun:
    experiment_id = experiment_id_for(client, experiment)
    digest, space_digest = config_hash(base_config), _space_hash(space_yaml)
    found = _search(client, experiment_id, f"tags.`{RUN_NAME_TAG}` = {quoted(search_name)}")
    if found:
        run = found[0]
        _check_search_continuable(run, search_name, digest, space_digest, resume=resume)
        client.update_run(run.info.run_id, status="RUNNING")
    elif resume:
        # A new parent would receive only the trials left; those restored from Tune's state
        # would log to the old one, wherever it is.
        raise ReidError(
            f"search {search_name!r} has no MLflow run in experiment {experiment!r}; "
            "resume it with the tracking URI and experiment it started with"
        )
    else:
        metric, mode = objectives[0]
        tags = {
            KIND_TAG: SEARCH_KIND,
            RUN_NAME_TAG: search_name,
            CONFIG_HASH_TAG: digest,
            SPACE_HASH_TAG: space_digest,
            OBJECTIVE_TAG: metric,
            MODE_TAG: mode,
        }
        run = client.create_run(experiment_id, run_name=search_name, tags=tags)
    _log_new_params(client, run, params)
    client.log_text(run.info.run_id, space_yaml, SEARCH_SPACE_ARTIFACT)
    client.log_text(run.info.run_id, to_yaml(base_config), CONFIG_ARTIFACT)
    return SearchRun(run.info.run_id, experiment_id, resumed=bool(found))


def open_search_run(
    tracking_uri: str,
    *,
    experiment: str,
    search_name: str,
    settings: Mapping[str, str],
    space_yaml: str,
    base_config: ReidConfig,
    objectives: Objectives,
    resume: bool = False,
) -> SearchRun:
    """The parent run named `search_name` in `experiment`, RUNNING: created by a fresh launch,
    found again by a resumed one (`resume`).

    settings: search params such as `search.num_samples`, `search.config`; the objectives are
    added as `search.objective.<i>.metric/mode`, the first one also as tags `reid.objective`,
    `reid.mode`. Artifacts: `search_space.yaml` (`space_yaml` verbatim), `config.yaml`.
    `ReidError` when a fresh launch finds a run of that name, when a resumed one finds none,
    or when the run found has another base config or space.
    """
    if not search_name:
        raise ReidError("the search name is empty")
    if not objectives:
        raise ReidError(f"search {search_name!r} has no objective")
    check_tracking_store(tracking_uri)
    client = _client(tracking_uri)
    params = {**objective_params(objectives), **settings}
    return retrying(
        tracking_uri,
        f"opening search run {search_name!r}",
        lambda: _open_search(
            client,
            experiment=experiment,
            search_name=search_name,
            params=params,
            space_yaml=space_yaml,
            base_config=base_config,
            objectives=objectives,
            resume=resume,
        ),
    )


def _trial_filter(parent_run_id: str, trial_id: str | None = None) -> str:
    parts = [f"tags.`{PARENT_RUN_TAG}` = {quoted(parent_run_id)}"]
    parts.append(f"tags.`{KIND_TAG}` = '{TRIAL_KIND}'")
    if trial_id is not None:
        parts.append(f"tags.`{TRIAL_ID_TAG}` = {quoted(trial_id)}")
    return " AND ".join(parts)


def _find_trial(client: MlflowClient, parent_run_id: str, trial_id: str) -> Run | None:
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    found = _search(client, experiment_id, _trial_filter(parent_run_id, trial_id))
    if len(found) > 1:
        logger.warning("trial %s has %d runs; using the oldest", trial_id, len(found))
    return found[0] if found else None


def find_trial_run(tracking_uri: str, parent_run_id: str, trial_id: str) -> str | None:
    """The run id of trial `trial_id` under parent run `parent_run_id`, or None."""
    client = _client(tracking_uri)
    run = retrying(
        tracking_uri,
        f"looking up trial {trial_id}",
        lambda: _find_trial(client, parent_run_id, trial_id),
    )
    return None if run is None else run.info.run_id


def searched_json(searched: Mapping[str, Any]) -> str:
    """The `reid.searched_params` tag: sorted JSON of the sampled {path: value}."""
    return json.dumps(dict(searched), sort_keys=True, default=str)


def trial_params(config: ReidConfig, unsampled: Collection[str]) -> dict[str, str]:
    """The flattened trial config without the `unsampled` paths (and any key under them)."""
    prefixes = tuple(f"{path}." for path in unsampled)
    skipped = set(unsampled)
    return {
        key: value
        for key, value in flatten(config).items()
        if key not in skipped and not key.startswith(prefixes)
    }


def _open_trial(
    client: MlflowClient,
    *,
    experiment_id: str,
    parent_run_id: str,
    run_name: str,
    trial_id: str,
    config: ReidConfig,
    searched: Mapping[str, Any],
    unsampled: Collection[str],
) -> str:
    run = _find_trial(client, parent_run_id, trial_id)
    if run is None:
        tags = {
            PARENT_RUN_TAG: parent_run_id,
            KIND_TAG: TRIAL_KIND,
            TRIAL_ID_TAG: trial_id,
            RUN_NAME_TAG: run_name,
            CONFIG_HASH_TAG: config_hash(config),
            SEARCHED_PARAMS_TAG: searched_json(searched),
            TRIAL_STATUS_TAG: RUNNING,
        }
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    else:
        # A retried or restored trial: open again, and forget how the last attempt ended.
        client.update_run(run.info.run_id, status="RUNNING")
        client.set_tag(run.info.run_id, TRIAL_STATUS_TAG, RUNNING)
        for stale in (TRIAL_ERROR_TAG, TRIAL_REASON_TAG):
            if stale in run.data.tags:
                client.delete_tag(run.info.run_id, stale)
    # Searched keys this trial did not sample (their `when` failed) are left out of the params:
    # a base value there (a triplet margin with triplet off) would read as a tried setting.
    complete_run(client, run, config, trial_params(config, unsampled))
    return str(run.info.run_id)


def open_trial_run(
    tracking_uri: str,
    *,
    experiment_id: str,
    parent_run_id: str,
    search_name: str,
    trial_id: str,
    config: ReidConfig,
    searched: Mapping[str, Any],
    unsampled: Collection[str] = (),
) -> str:
    """The child run of trial `trial_id` (created once, nested under the parent), RUNNING.

    Run name `<search name>-<trial id>`; tags `reid.kind=trial`, `reid.trial_id`,
    `reid.searched_params` (JSON of the sampled params); params: the flattened trial config
    except the `unsampled` config paths (searched params whose `when` failed); artifact
    `config.yaml` (complete). A second call for the same parent and trial id returns that run.
    """
    client = _client(tracking_uri)
    return retrying(
        tracking_uri,
        f"opening the run of trial {trial_id}",
        lambda: _open_trial(
            client,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            run_name=f"{search_name}-{trial_id}",
            trial_id=trial_id,
            config=config,
            searched=searched,
            unsampled=unsampled,
        ),
    )


def one_line(text: str) -> str:
    """The first non-empty line of `text`, at most 500 characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:_ERROR_LIMIT] if lines else ""


def _close_trial(
    client: MlflowClient, run_id: str, outcome: TrialOutcome, reason: str | None
) -> None:
    client.set_tag(run_id, TRIAL_STATUS_TAG, outcome)
    if reason:
        tag = TRIAL_ERROR_TAG if outcome == "failed" else TRIAL_REASON_TAG
        client.set_tag(run_id, tag, one_line(reason))
    client.set_terminated(run_id, _RUN_STATUS[outcome])


def close_trial_run(
    tracking_uri: str, run_id: str, outcome: TrialOutcome, reason: str | None = None
) -> None:
    """Tag trial run `run_id` with `reid.trial_status=outcome` and terminate it.

    completed, stopped_early → FINISHED; failed → FAILED (`reason`'s first line as
    `reid.trial_error`); interrupted → KILLED. Other outcomes keep a reason as `reid.trial_reason`.
    """
    if outcome not in _RUN_STATUS:
        raise ReidError(
            f"trial outcome {outcome!r} is not one of {', '.join(get_args(TrialOutcome))}"
        )
    client = _client(tracking_uri)
    retrying(
        tracking_uri,
        f"closing trial run {run_id}",
        lambda: _close_trial(client, run_id, outcome, reason),
    )


def _trial_runs(client: MlflowClient, parent_run_id: str) -> list[Run]:
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    return _search(client, experiment_id, _trial_filter(parent_run_id))


def trial_rows(tracking_uri: str, parent_run_id: str) -> list[TrialRow]:
    """Every trial of the search `parent_run_id`, in start order."""
    client = _client(tracking_uri)
    runs = retrying(
        tracking_uri,
        f"reading the trials of search run {parent_run_id}",
        lambda: _trial_runs(client, parent_run_id),
    )
    return [trial_row(run) for run in runs]


def _close_leftovers(client: MlflowClient, rows: list[TrialRow]) -> list[TrialRow]:
    """Close trial runs still RUNNING (no Tune callback closed them) as interrupted."""
    closed: list[TrialRow] = []
    for row in rows:
        if row.status == "RUNNING":
            logger.warning("trial %s was still running; marking it interrupted", row.trial_id)
            _close_trial(client, row.run_id, "interrupted", None)
            run = client.get_run(row.run_id)
            closed.append(trial_row(run))
        else:
            closed.append(row)
    return closed


def _best_values(rows: Sequence[TrialRow], objectives: Objectives) -> dict[str, float]:
    best: dict[str, float] = {}
    for metric, mode in objectives:
        ranked = rank_trials(scored_rows(rows, [metric]), metric, mode)
        if ranked:
            best[metric] = ranked[0].metrics[metric]
    return best


def _log_best(
    client: MlflowClient,
    parent_run_id: str,
    best: Mapping[str, float],
    tags: Mapping[str, str],
) -> None:
    current = client.get_run(parent_run_id).data.metrics
    # Only changed values: calling this again (resume) adds no duplicate points.
    points = [
        Metric(f"best/{metric}", value, int(1000 * time.time()), 0)
        for metric, value in best.items()
        if current.get(f"best/{metric}") != value
    ]
    if points:
        client.log_batch(parent_run_id, metrics=points)
    for key, value in tags.items():
        client.set_tag(parent_run_id, key, value)


def _log_figures(
    tracking_uri: str,
    client: MlflowClient,
    parent_run_id: str,
    rows: list[TrialRow],
    objectives: Objectives,
) -> list[str]:
    """The figures logged under `figures/`; best effort: a figure that cannot be drawn or
    logged costs a warning, never the summary or the closing of the parent run."""
    from reid_platform.tracking.search_figures import write_search_figures

    logged: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="reid-search-figures-") as folder:
            for path in write_search_figures(rows, objectives, Path(folder)):
                retrying(
                    tracking_uri,
                    f"logging {path.name} to search run {parent_run_id}",
                    partial(client.log_artifact, parent_run_id, str(path), FIGURES_DIR),
                )
                logged.append(f"{FIGURES_DIR}/{path.name}")
    except Exception as error:  # any failure: figures are a convenience, see above
        logger.warning(
            "search run %s: figures not logged: %s",
            parent_run_id,
            one_line(str(error)) or type(error).__name__,
        )
    return logged


def _summarise(
    tracking_uri: str, client: MlflowClient, parent_run_id: str, objectives: Objectives
) -> tuple[list[TrialRow], dict[str, str], dict[str, float], list[str]]:
    """Close leftover trials; log trials.csv, best values and tags, figures. Returns the
    ranked rows, the tags, the best values and the figures logged."""
    rows = retrying(
        tracking_uri,
        f"closing the open trials of search run {parent_run_id}",
        lambda: _close_leftovers(client, trial_rows(tracking_uri, parent_run_id)),
    )
    metric, mode = objectives[0]
    ranked = rank_trials(rows, metric, mode)
    best = _best_values(rows, objectives)
    leader = rank_trials(scored_rows(rows, [metric]), metric, mode)
    tags: dict[str, str] = {}
    if leader:
        tags[BEST_RUN_TAG] = leader[0].run_id
    if len(objectives) > 1:
        front = pareto_front(scored_rows(rows, [m for m, _ in objectives]), objectives)
        tags[PARETO_RUNS_TAG] = json.dumps([row.run_id for row in front])
    text = trials_csv(ranked, objectives)

    def write() -> None:
        client.log_text(parent_run_id, text, TRIALS_ARTIFACT)
        _log_best(client, parent_run_id, best, tags)

    retrying(tracking_uri, f"logging the search summary to run {parent_run_id}", write)
    figures = _log_figures(tracking_uri, client, parent_run_id, ranked, objectives)
    return ranked, tags, best, figures


def finish_search_run(
    tracking_uri: str,
    parent_run_id: str,
    *,
    objectives: Objectives,
    status: RunStatus,
) -> SearchSummary:
    """Summarise the search into its parent run and terminate it with `status`.

    Closes trial runs left RUNNING as interrupted, logs `trials.csv` (ranked by the first
    objective, normally ended trials first), `figures/*.png` (best effort: a failure is a
    warning), metrics `best/<metric>` over completed and stopped-early trials, tag
    `reid.best_run_id` (and `reid.pareto_run_ids` for two objectives). The parent run is
    terminated even when the summary fails (that error is raised afterwards). Calling it again
    (after a resume) rewrites the summary from what MLflow holds.
    """
    if not objectives:
        raise ReidError(f"search run {parent_run_id} has no objective to rank trials by")
    if status not in ("FINISHED", "FAILED", "KILLED"):
        raise ReidError(f"run status {status!r} is not one of FINISHED, FAILED, KILLED")
    client = _client(tracking_uri)

    def terminate() -> None:
        retrying(
            tracking_uri,
            f"closing search run {parent_run_id}",
            lambda: client.set_terminated(parent_run_id, status),
        )

    try:
        ranked, tags, best, figures = _summarise(tracking_uri, client, parent_run_id, objectives)
    except BaseException:
        # The summary's error is the one to report; a parent left RUNNING would be worse.
        try:
            terminate()
        except ReidError as error:
            logger.warning("search run %s stays open: %s", parent_run_id, error)
        raise
    terminate()
    return SearchSummary(parent_run_id, ranked, tags.get(BEST_RUN_TAG), best, figures)
