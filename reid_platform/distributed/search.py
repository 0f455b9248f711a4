"""A search: Ray Tune + Optuna over a search space, each trial one Ray Train run, tracked in MLflow.

The Tune experiment is named after the search and lives under the config's
`distributed.storage_path`, next to the trials' Train runs (`<search>-train-<trial id>`), so a
resumed search (`Tuner.restore`) reruns unfinished trials and Train continues them from their
checkpoints. Resources follow platform-facts §1.8 / P1: a trial's driver holds a sliver of a CPU
and `max_concurrent_trials` bounds how many worker groups compete, so trials never deadlock.
"""

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from reid_platform.config import ReidConfig
from reid_platform.config.search import SearchSpaceConfig
from reid_platform.distributed.cluster import ray_session
from reid_platform.distributed.search_callbacks import (
    ProgressRenderer,
    SearchProgress,
    TrialRunCloser,
)
from reid_platform.distributed.search_space import (
    build_sampler,
    define_by_run,
    open_optuna_storage,
    seed_points,
    trial_config,
)
from reid_platform.distributed.search_trial import (
    EPOCHS_DONE_KEY,
    SEARCH_KEY,
    SearchConstants,
    run_trial,
)
from reid_platform.distributed.trainer import storage_location
from reid_platform.errors import ReidError
from reid_platform.tracking.connection import absolute_tracking_uri
from reid_platform.tracking.runs import RunStatus
from reid_platform.tracking.search_runs import (
    SearchRun,
    SearchSummary,
    finish_search_run,
    open_search_run,
    trial_rows,
)
from reid_platform.tracking.trial_table import TrialRow

logger = logging.getLogger(__name__)

Objectives = list[tuple[str, str]]
_ENDED = frozenset({Trial.TERMINATED, Trial.ERROR})


@dataclass(frozen=True)
class SearchLaunch:
    """How a search is launched: its name (Tune experiment and MLflow parent run), the driver's
    working directory, the MLflow store, whether to resume the search of that name, the Ray
    cluster to join (None: a local Ray), the files it came from (logged with the parent run),
    where to show the live trials table (None: log lines only), and the SHA-256 of the model
    files a distillation base config names, by run id (pinned by the caller)."""

    search_name: str
    working_dir: Path
    tracking_uri: str
    resume: bool = False
    address: str | None = None
    config_path: str = ""
    space_path: str = ""
    progress: ProgressRenderer | None = None
    model_sha256: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchOutcome:
    """A search that ended (or was interrupted: `interrupted`, resumable with the same name).

    ranking: every trial's row, best first by the first objective (trials without it last).
    """

    search_name: str
    parent_run_id: str
    experiment_path: str
    interrupted: bool
    ranking: list[TrialRow]
    summary: SearchSummary
    wall_time_s: float


def objectives_of(space: SearchSpaceConfig) -> Objectives:
    """(metric, mode) of each objective, in the space's order."""
    return [(objective.metric, objective.mode) for objective in space.objectives]


def experiment_path(storage: str, search_name: str) -> str:
    """The Tune experiment folder (local path or URI) of search `search_name`."""
    return f"{storage.rstrip('/')}/{search_name}"


def cpus_needed(space: SearchSpaceConfig, reference: ReidConfig) -> int:
    """Logical CPUs a local Ray needs to run `max_concurrent_trials` trials at once: each
    trial's Train workers plus its driver's share (the Train controller needs none)."""
    trials = space.resources.max_concurrent_trials
    distributed = reference.distributed
    workers = trials * distributed.num_workers * distributed.cpus_per_worker
    return workers + math.ceil(trials * space.resources.driver_cpus)


def search_settings(space: SearchSpaceConfig, launch: SearchLaunch) -> dict[str, str]:
    """The parent run's `search.*` params (the objectives are added by `open_search_run`)."""
    settings = {
        "search.num_samples": str(space.num_samples),
        "search.scheduler": space.scheduler.kind,
        "search.max_concurrent_trials": str(space.resources.max_concurrent_trials),
        "search.driver_cpus": str(space.resources.driver_cpus),
        "search.seed_points": str(len(space.seed_points)),
        "search.config": launch.config_path,
        "search.space": launch.space_path,
        "search.optuna_storage": space.optuna_storage or "",
        "search.study_name": space.study_name or launch.search_name,
    }
    if space.scheduler.kind == "asha":
        settings["search.asha.grace_period"] = str(space.scheduler.asha.grace_period)
        settings["search.asha.reduction_factor"] = str(space.scheduler.asha.reduction_factor)
    return settings


def trial_dirname(trial: Trial) -> str:
    """Short trial folders (Tune's default embeds the whole config in the name)."""
    return f"trial_{trial.trial_id}"


def build_searcher(space: SearchSpaceConfig, seed: int, study_name: str) -> OptunaSearch:
    """OptunaSearch over the space's define-by-run function; metric and mode are given to the
    searcher itself (Tune's are never pushed into a searcher that owns its space, §2.2)."""
    objectives = objectives_of(space)
    metrics = [metric for metric, _ in objectives]
    modes = [mode for _, mode in objectives]
    storage = open_optuna_storage(space.optuna_storage) if space.optuna_storage else None
    return OptunaSearch(
        define_by_run(space),
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        points_to_evaluate=seed_points(space) or None,
        sampler=build_sampler(space, seed),
        study_name=space.study_name or study_name,
        storage=storage,
    )


def build_scheduler(space: SearchSpaceConfig, max_epochs: int) -> TrialScheduler | None:
    """ASHA on epochs done; `max_t` past the last epoch, so ASHA never kills a trial for merely
    reaching it (platform-facts §2.3)."""
    if space.scheduler.kind != "asha":
        return None
    asha = space.scheduler.asha
    return ASHAScheduler(
        time_attr=EPOCHS_DONE_KEY,
        max_t=max_epochs + 1,
        grace_period=asha.grace_period,
        reduction_factor=asha.reduction_factor,
    )


def _callbacks(space: SearchSpaceConfig, launch: SearchLaunch) -> list[tune.Callback]:
    callbacks: list[tune.Callback] = [TrialRunCloser()]
    if launch.progress is not None:
        callbacks.append(
            SearchProgress(
                searched=list(space.params),
                objective=space.objectives[0].metric,
                render=launch.progress,
            )
        )
    return callbacks


def _new_tuner(
    trainable: Any,
    reference: ReidConfig,
    space: SearchSpaceConfig,
    launch: SearchLaunch,
    constants: SearchConstants,
    storage: str,
) -> tune.Tuner:
    """reference: base + fixed (the settings every trial shares: seed, epochs, failures)."""
    metric, mode = objectives_of(space)[0]
    tune_config = tune.TuneConfig(
        metric=metric,
        mode=mode,
        num_samples=space.num_samples,
        max_concurrent_trials=space.resources.max_concurrent_trials,
        search_alg=build_searcher(space, reference.seed, launch.search_name),
        scheduler=build_scheduler(space, reference.solver.max_epochs),
        trial_dirname_creator=trial_dirname,
    )
    run_config = tune.RunConfig(
        name=launch.search_name,
        storage_path=storage,
        callbacks=_callbacks(space, launch),
        failure_config=tune.FailureConfig(max_failures=reference.distributed.max_failures),
        # The live table replaces Tune's own; its warnings and errors still show.
        verbose=0 if launch.progress is not None else 1,
    )
    return tune.Tuner(
        trainable,
        param_space={SEARCH_KEY: constants.as_config()},
        tune_config=tune_config,
        run_config=run_config,
    )


def _check_experiment(path: str, launch: SearchLaunch) -> None:
    exists = tune.Tuner.can_restore(path)
    if launch.resume and not exists:
        raise ReidError(f"there is no search {launch.search_name!r} to resume at {path}")
    if exists and not launch.resume:
        raise ReidError(
            f"search {launch.search_name!r} already exists at {path}; "
            "pass --resume to continue it, or choose another --name"
        )


def search_interrupted(path: str) -> bool:
    """Whether the saved state of the experiment at `path` has trials left to run: one not
    ended, or fewer trials than the search's budget (an interruption between trials)."""
    # Trials that never reported have no result files; Ray warns about each, needlessly here.
    analysis_logger = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = analysis_logger.level
    analysis_logger.setLevel(logging.ERROR)
    try:
        trials = tune.ExperimentAnalysis(path).trials
    except (OSError, ValueError) as error:
        logger.warning("cannot read the saved search state at %s: %s", path, error)
        return True
    finally:
        analysis_logger.setLevel(level)
    if not trials:
        return True
    budget = int(trials[0].config.get(SEARCH_KEY, {}).get("num_samples", len(trials)))
    return len(trials) < budget or any(trial.status not in _ENDED for trial in trials)


def _final_status(rows: list[TrialRow], interrupted: bool) -> RunStatus:
    if interrupted:
        return "KILLED"
    scored = any(row.trial_status in ("completed", "stopped_early") for row in rows)
    return "FINISHED" if scored or not rows else "FAILED"


def _finish(
    uri: str,
    parent: SearchRun,
    objectives: Objectives,
    status: RunStatus,
) -> SearchSummary:
    return finish_search_run(uri, parent.run_id, objectives=objectives, status=status)


def _close_after_error(
    uri: str, parent: SearchRun, objectives: Objectives, status: RunStatus
) -> None:
    """Summarise what there is and close the parent; a failure here must not hide the error."""
    try:
        _finish(uri, parent, objectives, status)
    except ReidError as error:
        logger.warning("could not close search run %s: %s", parent.run_id, error)


def _fit(
    base: ReidConfig,
    reference: ReidConfig,
    space: SearchSpaceConfig,
    launch: SearchLaunch,
    constants: SearchConstants,
    storage: str,
) -> None:
    """Start the Tune experiment, or restore it (its config and callbacks come back from the
    experiment folder; unfinished and errored trials rerun)."""
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=base, space=space),
        {"cpu": space.resources.driver_cpus},
    )
    if launch.resume:
        path = experiment_path(storage, launch.search_name)
        tuner = tune.Tuner.restore(
            path, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = _new_tuner(trainable, reference, space, launch, constants, storage)
    tuner.fit()


def warn_if_not_shared(storage: str, tracking_uri: str) -> None:
    """On a Ray cluster, trials run on other nodes: a local storage path or a sqlite/file
    MLflow store is only seen by this machine (checkpoints, artifacts and runs go missing)."""
    if "://" not in storage:
        logger.warning(
            "distributed.storage_path %s is a local path: on a multi-node cluster, trials on "
            "other nodes cannot read or write it; use shared storage (s3://, gs://, NFS mounted "
            "at the same path everywhere)",
            storage,
        )
    if tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri:
        logger.warning(
            "tracking URI %s is a local store: trials on other nodes cannot log to it; use an "
            "MLflow tracking server (--tracking-uri http://...)",
            tracking_uri,
        )


def _open_parent(
    uri: str, base: ReidConfig, space: SearchSpaceConfig, launch: SearchLaunch
) -> SearchRun:
    parent = open_search_run(
        uri,
        experiment=base.tracking.experiment,
        search_name=launch.search_name,
        settings=search_settings(space, launch),
        space_yaml=Path(launch.space_path).read_text(encoding="utf-8") if launch.space_path else "",
        base_config=base,
        objectives=objectives_of(space),
        resume=launch.resume,
    )
    if launch.resume and not parent.resumed:
        # The trials restored from Tune's state carry the old parent's id: they would log
        # there while the rest logs here.
        raise ReidError(
            f"search {launch.search_name!r} has no MLflow run in {uri}; resume it with the "
            "tracking URI and experiment it started with"
        )
    return parent


def run_search(base: ReidConfig, space: SearchSpaceConfig, launch: SearchLaunch) -> SearchOutcome:
    """Run (or, with `launch.resume`, continue) the search of `space` over `base`.

    Fresh: a new Tune experiment and MLflow parent run; resume: `Tuner.restore` of the
    experiment (unfinished and errored trials rerun, Train resuming from its checkpoints) and
    the same parent run. Ray is joined (or started) before the parent run is opened, so a bad
    `--address` leaves nothing in MLflow. Ctrl-C once: Tune saves its state and the outcome is
    `interrupted` (parent KILLED); twice: `KeyboardInterrupt` (parent KILLED as well).
    """
    started = time.perf_counter()
    reference = trial_config(base, space, {})  # base + fixed: epochs, resources, storage
    storage = storage_location(reference.distributed, launch.working_dir)
    path = experiment_path(storage, launch.search_name)
    _check_experiment(path, launch)
    objectives = objectives_of(space)
    uri = absolute_tracking_uri(launch.tracking_uri, launch.working_dir)
    if launch.address is not None:
        warn_if_not_shared(storage, uri)
    with ray_session(launch.address, cpus_needed=cpus_needed(space, reference)):
        parent = _open_parent(uri, base, space, launch)
        constants = SearchConstants(
            search_name=launch.search_name,
            parent_run_id=parent.run_id,
            experiment_id=parent.experiment_id,
            tracking_uri=uri,
            working_dir=str(launch.working_dir),
            num_samples=space.num_samples,
            model_sha256=dict(launch.model_sha256),
        )
        logger.info(
            "%s search %s (MLflow run %s), Tune experiment %s",
            "resuming" if launch.resume else "starting",
            launch.search_name,
            parent.run_id,
            path,
        )
        try:
            _fit(base, reference, space, launch, constants, storage)
        except BaseException as error:
            # Ctrl-C twice (KeyboardInterrupt) or a Tune failure: what Tune saved so far
            # still resumes; the parent run must not stay RUNNING.
            status: RunStatus = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            _close_after_error(uri, parent, objectives, status)
            raise
    interrupted = search_interrupted(path)
    status = _final_status(trial_rows(uri, parent.run_id), interrupted)
    summary = _finish(uri, parent, objectives, status)
    return SearchOutcome(
        search_name=launch.search_name,
        parent_run_id=parent.run_id,
        experiment_path=path,
        interrupted=interrupted,
        ranking=summary.rows,
        summary=summary,
        wall_time_s=time.perf_counter() - started,
    )
