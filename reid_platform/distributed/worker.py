"""What runs inside each Ray Train worker: placement, DDP wrapping, resume, and reporting hooks.

Every rank calls `ray.train.report` once per epoch (a barrier: the same number of calls on
every rank); rank 0 attaches the checkpoint directory the loop wrote that epoch. The reported
metrics carry two bookkeeping keys, `EPOCH_KEY` and `FINAL_KEY`, that the controller-side
callback strips before logging. Ray's `prepare_data_loader` is never called: it would replace
our self-sharding P×K batch sampler (platform-facts §1.4).
"""

import logging
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ray.train
import ray.train.torch
from torch import nn

from reid_platform.config import ReidConfig
from reid_platform.distributed.worker_scratch import worker_scratch
from reid_platform.tracking.model_files import PinnedModels, fetch_run_model
from reid_platform.training.hooks import (
    EpochEnd,
    TrainingHooks,
    TrainingOutcome,
    WorkerPlacement,
)
from reid_platform.training.teacher import DistillationFiles

EPOCH_KEY = "epoch"
FINAL_KEY = "final"
RESERVED_KEYS = frozenset({EPOCH_KEY, FINAL_KEY})

logger = logging.getLogger(__name__)


class TrainFunction(Protocol):
    """The signature of `training.loop.train`, which runs unless `WorkerJob.train_fn` names
    another loop with the same contract."""

    def __call__(
        self,
        config: ReidConfig,
        *,
        placement: WorkerPlacement,
        hooks: TrainingHooks,
        work_dir: Path,
        resume_from: Path | None = None,
        wrap_model: Callable[[nn.Module], nn.Module] = ...,
        distillation_files: DistillationFiles | None = None,
    ) -> TrainingOutcome: ...


@dataclass(frozen=True)
class WorkerJob:
    """What the driver sends to every worker (pickled into `train_loop_config`).

    `working_dir` is the driver's working directory: relative paths in the config (dataset
    roots) mean the same on the workers as on the driver, although Ray Train starts each
    worker in a per-run temp directory. `models`: the model files of the runs
    `config.distillation` names, pinned by the driver; each worker fetches them from MLflow
    itself and checks their SHA-256.
    """

    config: ReidConfig
    working_dir: Path
    train_fn: TrainFunction | None = None
    models: PinnedModels | None = None


class RayReportHooks(TrainingHooks):
    """Every rank reports every epoch, rank 0 with the checkpoint it wrote (progress lines are
    the loop's own log records, forwarded by Ray)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def on_epoch_end(self, end: EpochEnd) -> None:
        metrics: dict[str, Any] = {**end.metrics, EPOCH_KEY: end.epoch, FINAL_KEY: end.final}
        if self.rank != 0 or end.checkpoint_dir is None:
            ray.train.report(metrics)
            return
        ray.train.report(
            metrics,
            checkpoint=ray.train.Checkpoint.from_directory(str(end.checkpoint_dir)),
            checkpoint_dir_name=f"epoch_{end.epoch:04d}",
            # The final directory stays: the loop's outcome points at it until the worker ends.
            delete_local_checkpoint_after_upload=not end.final,
        )


def _configure_worker_logging(rank: int) -> None:
    # A Ray worker's root logger has no handler, so INFO lines would vanish; Ray forwards the
    # worker's stderr to the driver, prefixed with the worker's name and pid. Other ranks log
    # warnings only: their progress lines would repeat rank 0's.
    package_logger = logging.getLogger("reid_platform")
    if not any(getattr(h, "_reid_worker", False) for h in package_logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._reid_worker = True  # type: ignore[attr-defined]
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    package_logger.propagate = False


def model_wrapper(config: ReidConfig, world_size: int) -> Callable[[nn.Module], nn.Module]:
    """DDP via Ray (no wrap for one worker); SyncBN on GPU only (torch's SyncBN refuses CPU).

    Unused parameters are tolerated while a freeze is configured: frozen modules produce no
    gradients during the first iterations, which plain DDP treats as an error.
    """
    freeze = config.solver.freeze
    find_unused = freeze.iters > 0 and bool(freeze.modules)

    def wrap(model: nn.Module) -> nn.Module:
        if config.distributed.use_gpu and world_size > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        wrapped: nn.Module = ray.train.torch.prepare_model(
            model, parallel_strategy_kwargs={"find_unused_parameters": find_unused}
        )
        return wrapped

    return wrap


def _resume_directory() -> AbstractContextManager[str | None]:
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return nullcontext(None)
    logger.info("resuming from checkpoint %s", checkpoint.path)
    directory: AbstractContextManager[str] = checkpoint.as_directory()
    return directory


def fetch_distillation_files(job: WorkerJob, out: Path) -> DistillationFiles:
    """This worker's own copies of the pinned teacher and student-init model files."""
    models = job.models
    if not job.config.distillation.enabled or models is None:
        return DistillationFiles()
    teacher, init = models.teacher, models.student_init
    return DistillationFiles(
        teacher=fetch_run_model(teacher, models.tracking_uri, out) if teacher else None,
        teacher_name=f"run {teacher.run_id}" if teacher else "",
        student_init=fetch_run_model(init, models.tracking_uri, out) if init else None,
        student_init_name=f"run {init.run_id}" if init else "",
    )


def _loop_train() -> TrainFunction:
    from reid_platform.training.loop import train

    return train


def train_worker(loop_config: dict[str, Any]) -> TrainingOutcome | None:
    """Ray Train's per-worker function; rank 0 returns its outcome (`Result.return_value`)."""
    job: WorkerJob = loop_config["job"]
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    _configure_worker_logging(rank)
    if job.working_dir.is_dir():
        os.chdir(job.working_dir)
    device = str(ray.train.torch.get_device()) if job.config.distributed.use_gpu else "cpu"
    placement = WorkerPlacement(rank=rank, world_size=world_size, device=device)
    train_fn = job.train_fn or _loop_train()
    # Not a TemporaryDirectory: Tune kills the workers of a stopped trial, and their scratch
    # (the last checkpoint) would stay on disk for good; see worker_scratch.
    with _resume_directory() as resume, worker_scratch() as work:
        outcome = train_fn(
            job.config,
            placement=placement,
            hooks=RayReportHooks(rank),
            work_dir=work,
            resume_from=Path(resume) if resume is not None else None,
            wrap_model=model_wrapper(job.config, world_size),
            distillation_files=fetch_distillation_files(job, work / "distillation"),
        )
    return outcome if rank == 0 else None
