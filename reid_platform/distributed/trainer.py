"""One training run on Ray Train: `TorchTrainer` built from the config, launched and unwrapped.

Ray Train resumes by `(storage_path, name)` (platform-facts §1.6): a second `fit()` with the same
run name starts from the latest registered checkpoint of the first. The run name therefore is the
training run's identity, shared with the MLflow run; the CLI makes new names unique.
"""

import dataclasses
import logging
import re
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.train
from ray.train.torch import TorchTrainer

from reid_platform.config import ReidConfig
from reid_platform.config.distributed import DistributedConfig
from reid_platform.distributed.worker import TrainFunction, WorkerJob, train_worker
from reid_platform.errors import ReidError
from reid_platform.tracking.model_files import PinnedModels
from reid_platform.training.hooks import TrainingOutcome

logger = logging.getLogger(__name__)

CHECKPOINTS_TO_KEEP = 2
"""The latest two: a crash right after a report can lose it, and resume then goes back one."""


@dataclass(frozen=True)
class TrainingLaunch:
    """Where a run goes: its name (Ray Train and MLflow), and the driver's working directory,
    against which relative paths of the config (storage path, dataset roots) are resolved."""

    run_name: str
    working_dir: Path


def storage_location(config: DistributedConfig, working_dir: Path) -> str:
    """`storage_path` as Ray needs it: URIs (s3://, gs://) as they are, local paths absolute."""
    if "://" in config.storage_path:
        return config.storage_path
    return str((working_dir / config.storage_path).resolve())


def scaling_config(config: DistributedConfig) -> ray.train.ScalingConfig:
    """Workers and their resources; CPUs are requested explicitly also on GPU workers (Ray's
    default GPU bundle has no CPU, starving the data loader)."""
    resources: dict[str, float] = {"CPU": config.cpus_per_worker}
    if config.use_gpu:
        resources["GPU"] = config.gpus_per_worker
    return ray.train.ScalingConfig(
        num_workers=config.num_workers, use_gpu=config.use_gpu, resources_per_worker=resources
    )


def check_device(config: ReidConfig) -> None:
    """Refuse a device the workers will not have (Ray hides GPUs from CPU-only workers)."""
    if config.training.device == "cuda" and not config.distributed.use_gpu:
        raise ReidError("training.device is cuda but distributed.use_gpu is false")


def build_trainer(
    config: ReidConfig,
    launch: TrainingLaunch,
    *,
    callbacks: Sequence[ray.train.UserCallback] = (),
    train_fn: TrainFunction | None = None,
    models: PinnedModels | None = None,
) -> TorchTrainer:
    """A `TorchTrainer` running `training.loop.train` (or `train_fn`) on every worker;
    `models`: the pinned run model files of a distillation config (each worker fetches
    them)."""
    check_device(config)
    callback_list: list[Any] = list(callbacks)
    job = WorkerJob(config=config, working_dir=launch.working_dir, train_fn=train_fn, models=models)
    run_config = ray.train.RunConfig(
        name=launch.run_name,
        storage_path=storage_location(config.distributed, launch.working_dir),
        failure_config=ray.train.FailureConfig(max_failures=config.distributed.max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=CHECKPOINTS_TO_KEEP),
        callbacks=callback_list,
    )
    # Ray's annotations say the worker function returns None; rank 0's value is
    # `Result.return_value` all the same (platform-facts §0.10).
    per_worker: Any = train_worker
    return TorchTrainer(
        per_worker,
        train_loop_config={"job": job},
        scaling_config=scaling_config(config.distributed),
        run_config=run_config,
    )


def _user_error(error: ray.train.TrainingFailedError) -> ReidError | None:
    """The first `ReidError` behind a failed run (a worker's, or a callback's on the controller)."""
    causes: list[BaseException] = []
    if isinstance(error, ray.train.WorkerGroupError):
        causes = [error.worker_failures[rank] for rank in sorted(error.worker_failures)]
    elif isinstance(error, ray.train.ControllerError):
        causes = [error.controller_failure]
    for cause in causes:
        current: BaseException | None = cause
        while current is not None:
            if isinstance(current, ReidError):
                return current
            current = current.__cause__
    return None


def _fit_interruptibly(trainer: TorchTrainer) -> Any:
    """`trainer.fit()`, with Ctrl-C turned back into `KeyboardInterrupt`.

    On the main thread Ray installs its own SIGINT handler for the duration of `fit` (and
    never removes it): it aborts the run gracefully (workers stopped, checkpoints kept) and
    then raises `SystemExit(0)` from the handler. Here that becomes a `KeyboardInterrupt`,
    and the previous handler is restored.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if on_main_thread else None
    try:
        return trainer.fit()
    except SystemExit:
        raise KeyboardInterrupt from None
    finally:
        if on_main_thread:
            signal.signal(signal.SIGINT, previous)


def _sentence(error: BaseException) -> str:
    """The error's own message: Ray's wrapper prepends the worker traceback and the class."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    last = lines[-1].strip() if lines else type(error).__name__
    return re.sub(r"^[\w.]+(Error|Exception): ", "", last)


def fit(trainer: TorchTrainer) -> TrainingOutcome:
    """Run the trainer → rank 0's outcome, its final checkpoint folder being the one in
    Ray's storage (the worker's own copy is gone). A user error inside a worker or the
    controller surfaces as a `ReidError` with that error's sentence."""
    try:
        result = _fit_interruptibly(trainer)
    except ray.train.TrainingFailedError as error:
        user_error = _user_error(error)
        if user_error is not None:
            raise ReidError(_sentence(user_error)) from None
        raise
    outcome = result.return_value
    if not isinstance(outcome, TrainingOutcome):
        raise ReidError(f"training run {trainer.run_config.name} returned no outcome from rank 0")
    stored = result.checkpoint.path if result.checkpoint is not None else None
    return dataclasses.replace(outcome, final_checkpoint_dir=Path(stored) if stored else None)
