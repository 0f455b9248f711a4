"""One search trial: the Tune function that drives one Ray Train run (platform-facts §1.8).

The Tune config of a trial holds the sampled parameters under their dotted config paths and the
search's constants under `SEARCH_KEY`. The function builds the trial's config, opens its MLflow
child run (idempotently: a retried or restored trial finds the same run), and fits a Train run
named `<search name>-train-<trial id>`: a deterministic name, so a rerun of the trial resumes
Train from its own checkpoints. A scheduler may kill this function inside `fit()`
(platform-facts §0.3): nothing may follow `fit()`; the Tune driver's callbacks close the run.
"""

import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray.tune
from ray.tune.integration.ray_train import TuneReportCallback

from reid_platform.config import ReidConfig
from reid_platform.config.search import SearchSpaceConfig
from reid_platform.distributed.callbacks import MlflowReportCallback
from reid_platform.distributed.search_space import sampled_params, trial_config
from reid_platform.distributed.trainer import TrainingLaunch, build_trainer, fit
from reid_platform.distributed.worker import EPOCH_KEY
from reid_platform.errors import ReidError
from reid_platform.tracking.distill_runs import record_teacher
from reid_platform.tracking.model_files import pin_distillation_models
from reid_platform.tracking.search_runs import open_trial_run

logger = logging.getLogger(__name__)

SEARCH_KEY = "__reid__"
"""Tune config key of the search's constants (`SearchConstants` as a dict)."""

EPOCHS_DONE_KEY = "epochs_done"
"""Added to every result Tune sees: epochs completed (reported 0-based `epoch` + 1), so ASHA's
`grace_period` counts whole epochs, and it survives `Tuner.restore` (unlike
`training_iteration`, which restarts at 1; platform-facts §0.12)."""


@dataclass(frozen=True)
class SearchConstants:
    """What every trial of one search shares, kept in the Tune config as plain data (it is
    stored with the experiment and comes back on `Tuner.restore`).

    working_dir: the search driver's working directory (relative config paths resolve there).
    num_samples: the search's trial budget (tells an interrupted search from a finished one).
    """

    search_name: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    working_dir: str
    num_samples: int
    model_sha256: dict[str, str] = field(default_factory=dict)
    """{run id: SHA-256} of the model files the base config's distillation names, pinned by
    the search driver (`tracking.model_files`); each trial's workers check theirs against it."""

    def as_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "SearchConstants":
        """The constants of a Tune trial config."""
        constants = config.get(SEARCH_KEY)
        if not isinstance(constants, Mapping):
            raise ReidError(f"the trial config has no {SEARCH_KEY!r} constants")
        return cls(**constants)


def train_run_name(search_name: str, trial_id: str) -> str:
    """The Ray Train run of a trial (deterministic: Train resumes by this name)."""
    return f"{search_name}-train-{trial_id}"


class ObjectiveReportCallback(TuneReportCallback):
    """Forwards rank 0's Train reports to Tune, only those that carry every objective.

    Validation metrics exist on evaluation epochs only; a result without the objective would
    fail Tune's metric check and mislead ASHA. Forwarded results keep `epoch` and gain
    `EPOCHS_DONE_KEY`. Must be built inside the Tune trial (it joins the trial's result queue).
    """

    def __init__(self, objectives: Sequence[str]) -> None:
        super().__init__()
        self.objectives = tuple(objectives)

    def after_report(
        self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any
    ) -> None:
        reported = metrics[0]
        if not all(name in reported for name in self.objectives):
            return
        counted = {**reported, EPOCHS_DONE_KEY: int(reported[EPOCH_KEY]) + 1}
        super().after_report(run_context, [counted, *metrics[1:]], checkpoint)


def run_trial(config: dict[str, Any], *, base: ReidConfig, space: SearchSpaceConfig) -> None:
    """The Tune function of every trial (bound to `base` and `space` by `tune.with_parameters`)."""
    constants = SearchConstants.from_config(config)
    trial_id = ray.tune.get_context().get_trial_id()
    params = sampled_params(config, space)
    trial = trial_config(base, space, params)
    run_id = open_trial_run(
        constants.tracking_uri,
        experiment_id=constants.experiment_id,
        parent_run_id=constants.parent_run_id,
        search_name=constants.search_name,
        trial_id=trial_id,
        config=trial,
        searched=params,
        # Conditional params whose `when` failed keep the base value, which is no search result.
        unsampled=sorted(set(space.params) - set(params)),
    )
    logger.info("trial %s (MLflow run %s): %s", trial_id, run_id, params)
    launch = TrainingLaunch(
        run_name=train_run_name(constants.search_name, trial_id),
        working_dir=Path(constants.working_dir),
    )
    callbacks = [
        # MLflow first: the final report's artifacts are logged before Tune sees the result
        # (a scheduler's STOP on it kills this trial).
        MlflowReportCallback(tracking_uri=constants.tracking_uri, run_id=run_id),
        ObjectiveReportCallback([objective.metric for objective in space.objectives]),
    ]
    with tempfile.TemporaryDirectory(prefix="reid-pins-") as scratch:
        # A searched teacher (not the base config's) is pinned here, by this trial.
        models = pin_distillation_models(
            trial, constants.tracking_uri, Path(scratch), known_sha256=constants.model_sha256
        )
    if models.teacher is not None:
        record_teacher(
            constants.tracking_uri,
            run_id,
            teacher_run_id=models.teacher.run_id,
            sha256=models.teacher.sha256,
            search_run_id=None,
            metrics={},
        )
    fit(build_trainer(trial, launch, callbacks=callbacks, models=models))
