"""The training loop of one data-parallel worker, framework-free: Ray and MLflow reach it only
through `TrainingHooks` (and the caller's `wrap_model`, e.g. DDP).

    outcome = train(config, placement=WorkerPlacement(rank=0, world_size=1, device="cpu"),
                    hooks=TrainingHooks(), work_dir=Path("outputs/run"))

Per epoch e (0-based) every rank: seeds its random streams from (seed, rank, e), sets the
sampler epoch, runs its shard of the batches (`epoch.TrainingStep`), then calls
`hooks.on_epoch_end` once. Rank 0 before that: evaluates the validation split every
`training.eval_period` epochs and at the last one, writes a checkpoint folder every
`training.checkpoint_period` epochs, at every evaluation and at the last one, and at the last
epoch evaluates the test split once (metrics `test/*`, report files and `metrics.json` in the
final checkpoint folder) and exports the model into its `export/` folder (`export.formats`;
metrics `export/latency_ms`, `export/images_per_sec`; see `final_export`). Nothing selects on
test metrics.

Resuming (`resume_from` = a checkpoint folder) loads model, optimizer, scheduler, scaler and
progress and continues with the next epoch: with the per-epoch seeds and the epoch-seeded
sampler, the resumed loss curve is the interrupted run's (see `seeding` for loader workers).

Distillation (`config.distillation.enabled`): the teacher is rebuilt from its model file
(`distillation_files.teacher`, fetched by the caller for a run id, or `teacher_weights`),
frozen, put on this worker's device and checked against the student (`training.teacher`);
each step adds its terms (`training.distiller`). It is never a part of the student, so
checkpoints, DDP and the export see the student alone.

DDP and freezing: `wrap_model` is called on the bare model after the solver is built and
before any module is frozen, so DDP registers every parameter. While `solver.freeze` holds
modules frozen, their parameters get no gradient, which DDP accepts only when built with
`find_unused_parameters=True`; the loop refuses a DDP model without it when a freeze is still
ahead. SyncBatchNorm conversion inside `wrap_model` is fine (the freeze finds the converted
layers). Evaluation and checkpoints use the bare model, never the wrapper.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from reid_platform import metric_names
from reid_platform.config import ReidConfig
from reid_platform.data.build import build_data, build_train_loader
from reid_platform.data.samplers import RankShardedBatchSampler
from reid_platform.data.splits import label_map_digest
from reid_platform.losses.build import build_loss
from reid_platform.modeling.build import build_model
from reid_platform.training.all_gather import GlobalBatchObjective
from reid_platform.training.build import Solver, build_solver
from reid_platform.training.checkpoint import TrainingProgress
from reid_platform.training.checkpoint_dir import (
    RunIdentity,
    checkpoint_folder,
    read_checkpoint,
    read_metrics,
    write_checkpoint,
    write_metrics,
)
from reid_platform.training.distiller import build_distiller
from reid_platform.training.epoch import (
    EpochPlan,
    EpochStats,
    Objective,
    TrainingClock,
    TrainingStep,
    run_epoch,
)
from reid_platform.training.errors import TrainingError
from reid_platform.training.final_export import export_final_model
from reid_platform.training.hooks import (
    EpochEnd,
    IterationLog,
    TrainingHooks,
    TrainingOutcome,
    WorkerPlacement,
)
from reid_platform.training.seeding import (
    configure_determinism,
    epoch_seed,
    seed_everything,
)
from reid_platform.training.teacher import (
    DistillationFiles,
    load_student_init,
    student_init_file,
)
from reid_platform.training.validation import TrainingEvaluator, ValidationResult

__all__ = [
    "DistillationFiles",
    "EpochEnd",
    "IterationLog",
    "TrainingHooks",
    "TrainingOutcome",
    "WorkerPlacement",
    "train",
]

logger = logging.getLogger(__name__)

ModelWrapper = Callable[[nn.Module], nn.Module]


def _no_wrap(model: nn.Module) -> nn.Module:
    return model


@dataclass
class _Run:
    """The objects of one `train` call and what it has produced so far."""

    config: ReidConfig
    placement: WorkerPlacement
    hooks: TrainingHooks
    work_dir: Path
    step: TrainingStep
    loader: torch.utils.data.DataLoader
    identity: RunIdentity
    evaluator: TrainingEvaluator | None  # rank 0 only
    progress: TrainingProgress
    clock: TrainingClock = field(default_factory=TrainingClock)
    validation: ValidationResult | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    final_dir: Path | None = None


def train(
    config: ReidConfig,
    *,
    placement: WorkerPlacement,
    hooks: TrainingHooks,
    work_dir: Path,
    resume_from: Path | None = None,
    wrap_model: ModelWrapper = _no_wrap,
    distillation_files: DistillationFiles | None = None,
) -> TrainingOutcome:
    """Train `config` on this worker (see the module docstring); → this worker's outcome.

    work_dir: where rank 0 writes `checkpoints/epoch_XXXX/`. resume_from: a checkpoint folder
    written by an earlier run of the same config. wrap_model: applied once to the bare model
    on `placement.device` (DDP, SyncBN); the identity by default. distillation_files: local
    copies of the model files `config.distillation` names by run id (teacher, student init).
    """
    started = time.perf_counter()
    device = torch.device(placement.device)
    configure_determinism(deterministic=config.training.deterministic, device=device)
    seed_everything(config.seed)
    files = distillation_files or DistillationFiles()
    run = _build_run(config, placement, hooks, Path(work_dir), resume_from, wrap_model, files)
    start_epoch = run.progress.epoch
    if start_epoch >= config.solver.max_epochs:
        return _already_finished(run, resume_from, started)
    logger.info(
        "training epochs %d-%d, %d iterations each, rank %d of %d on %s",
        start_epoch + 1,
        config.solver.max_epochs,
        len(run.loader),
        placement.rank,
        placement.world_size,
        device,
    )
    for epoch in range(start_epoch, config.solver.max_epochs):
        hooks.on_epoch_end(_run_epoch(run, epoch))
    return TrainingOutcome(
        validation_metrics=run.validation.metrics if run.validation is not None else {},
        test_metrics=run.test_metrics,
        start_epoch=start_epoch,
        epochs_run=config.solver.max_epochs - start_epoch,
        wall_time_s=time.perf_counter() - started,
        final_checkpoint_dir=run.final_dir,
        teacher_device=_teacher_device(run.step),
    )


def _build_run(
    config: ReidConfig,
    placement: WorkerPlacement,
    hooks: TrainingHooks,
    work_dir: Path,
    resume_from: Path | None,
    wrap_model: ModelWrapper,
    files: DistillationFiles,
) -> _Run:
    device = torch.device(placement.device)
    data = build_data(config.data)
    loader = build_train_loader(
        config.data,
        config.input,
        data.train,
        rank=placement.rank,
        world_size=placement.world_size,
        seed=config.seed,
    )
    model, channels_last = _model(config, data.num_classes, files, device)
    label_map = label_map_digest(data.train)
    solver = build_solver(config.solver, model, iters_per_epoch=len(loader), device=device)
    identity = RunIdentity(
        config=config,
        num_classes=data.num_classes,
        world_size=placement.world_size,
        label_map=label_map,
    )
    progress = TrainingProgress(epoch=0, iteration=0, sampler_epoch=0)
    if resume_from is not None:
        progress = read_checkpoint(
            resume_from, model=model, solver=solver, identity=identity, device=placement.device
        )
        logger.info("resumed from %s after epoch %d", resume_from, progress.epoch)
    wrapped = _wrap(model, wrap_model, solver, progress, config)
    step = TrainingStep(
        model=wrapped,
        bare=model,
        objective=_objective(config, placement, device),
        solver=solver,
        device=device,
        channels_last=channels_last,
        base_lr=config.solver.optimizer.base_lr,
        distiller=build_distiller(
            config,
            files,
            num_classes=data.num_classes,
            label_map=label_map,
            precision=solver.precision,
            device=device,
        ),
    )
    evaluator = TrainingEvaluator(config, data, device=placement.device)
    if placement.is_main and not evaluator.has_validation:
        logger.info("no validation split (data.validation): eval/* metrics are not computed")
    return _Run(
        config=config,
        placement=placement,
        hooks=hooks,
        work_dir=work_dir,
        step=step,
        loader=loader,
        identity=identity,
        evaluator=evaluator if placement.is_main else None,
        progress=progress,
    )


def _model(
    config: ReidConfig, num_classes: int, files: DistillationFiles, device: torch.device
) -> tuple[nn.Module, bool]:
    """The model on `device` (from `distillation.student_init_run_id`'s weights when given),
    and whether it is in channels_last memory format."""
    model = build_model(config.model, config.input, num_classes=num_classes).to(device)
    if config.distillation.enabled and (init := student_init_file(config, files)) is not None:
        load_student_init(model, init[0], name=init[1], student=config)
    channels_last = _channels_last(config, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, channels_last


def _teacher_device(step: TrainingStep) -> str | None:
    return str(step.distiller.teacher.device) if step.distiller is not None else None


def _channels_last(config: ReidConfig, device: torch.device) -> bool:
    if config.training.channels_last and device.type != "cuda":
        logger.info("training.channels_last applies on CUDA only; ignored on %s", device)
    return config.training.channels_last and device.type == "cuda"


def _wrap(
    model: nn.Module,
    wrap_model: ModelWrapper,
    solver: Solver,
    progress: TrainingProgress,
    config: ReidConfig,
) -> nn.Module:
    """`wrap_model(model)` (nothing is frozen yet), checked against a freeze still ahead;
    then `torch.compile` when `training.compile` is set."""
    wrapped = wrap_model(model)
    freeze_ahead = solver.freeze is not None and progress.iteration < solver.freeze.iters
    if (
        freeze_ahead
        and isinstance(wrapped, nn.parallel.DistributedDataParallel)
        and not wrapped.find_unused_parameters
    ):
        raise TrainingError(
            "solver.freeze.iters > 0 with several workers needs the model wrapped by "
            "DistributedDataParallel(find_unused_parameters=True): frozen parameters get no "
            "gradient"
        )
    if config.training.compile:
        compiled: nn.Module = torch.compile(wrapped)  # type: ignore[assignment]
        return compiled
    return wrapped


def _objective(config: ReidConfig, placement: WorkerPlacement, device: torch.device) -> Objective:
    """The loss terms; metric terms over all ranks' features when `all_gather_embeddings`."""
    loss = build_loss(config.losses).to(device)
    if not config.distributed.all_gather_embeddings or placement.world_size == 1:
        return loss
    if not (dist.is_available() and dist.is_initialized()):
        logger.warning(
            "distributed.all_gather_embeddings is set but torch.distributed is not initialised; "
            "metric losses use each rank's own batch"
        )
        return loss
    logger.info(
        "metric losses see the global batch (features gathered from %d ranks)", placement.world_size
    )
    return GlobalBatchObjective(loss)


def _run_epoch(run: _Run, epoch: int) -> EpochEnd:
    """Train epoch `epoch` on this rank; on rank 0 also evaluate / checkpoint as scheduled."""
    config, iters = run.config, len(run.loader)
    seed = epoch_seed(config.seed, rank=run.placement.rank, epoch=epoch)
    seed_everything(seed)
    if run.loader.generator is not None:
        # Loader workers (re-started every epoch) seed themselves from this generator, so an
        # epoch's augmentations depend on (seed, rank, epoch) alone, also after a resume.
        run.loader.generator.manual_seed(seed)
    sampler = run.loader.batch_sampler
    if isinstance(sampler, RankShardedBatchSampler):
        sampler.set_epoch(epoch)
    plan = EpochPlan(
        epoch=epoch,
        first_iteration=run.progress.iteration,
        iters_per_epoch=iters,
        max_epochs=config.solver.max_epochs,
        log_period=config.training.log_period,
    )
    stats = run_epoch(run.step, run.loader, plan=plan, hooks=run.hooks, clock=run.clock)
    run.progress = TrainingProgress(
        epoch=epoch + 1,
        iteration=run.progress.iteration + stats.iterations,
        sampler_epoch=epoch,
    )
    metrics = _train_metrics(stats)
    # The model's size rides along every epoch: a search may minimise it (objective
    # `model/params`), and Tune only sees what each report carries.
    metrics[metric_names.MODEL_PARAMS] = float(sum(p.numel() for p in run.step.bare.parameters()))
    final = epoch + 1 == config.solver.max_epochs
    folder = None
    if run.evaluator is not None:
        folder = _main_rank_epoch_end(run, run.evaluator, epoch, final, metrics)
    return EpochEnd(epoch=epoch, metrics=metrics, checkpoint_dir=folder, final=final)


def _train_metrics(stats: EpochStats) -> dict[str, float]:
    metrics = {metric_names.TRAIN_LOSS: stats.losses["loss"]}
    for name, value in stats.losses.items():
        if name != "loss":
            metrics[metric_names.train_loss_metric(name)] = value
    metrics[metric_names.TRAIN_LR] = stats.lr
    metrics[metric_names.TRAIN_IMAGES_PER_SEC] = stats.images_per_sec
    return metrics


def _main_rank_epoch_end(
    run: _Run, evaluator: TrainingEvaluator, epoch: int, final: bool, metrics: dict[str, float]
) -> Path | None:
    """Rank 0: validation, checkpoint and (last epoch) the test evaluation; adds their metrics
    to `metrics`; → the checkpoint folder written, if any."""
    period = run.config.training
    evaluate = final or (epoch + 1) % period.eval_period == 0
    if evaluate and evaluator.has_validation:
        run.validation = evaluator.validate(run.step.bare)
        metrics.update(run.validation.metrics)
    if not (final or evaluate or (epoch + 1) % period.checkpoint_period == 0):
        return None
    folder = write_checkpoint(
        checkpoint_folder(run.work_dir, epoch),
        model=run.step.bare,
        solver=run.step.solver,
        progress=run.progress,
        identity=run.identity,
    )
    logger.info("checkpoint written to %s", folder)
    if final:
        run.test_metrics = evaluator.test(run.step.bare, folder, run.validation).metrics
        export_metrics = export_final_model(run.step.bare, run.config, evaluator.data, folder)
        metrics.update(run.test_metrics | export_metrics)
        validation = run.validation.metrics if run.validation is not None else {}
        write_metrics(folder, validation | run.test_metrics | export_metrics)
        run.final_dir = folder
    return folder


def _already_finished(run: _Run, resume_from: Path | None, started: float) -> TrainingOutcome:
    """A resume from the final checkpoint: nothing to train; the metrics are the saved ones."""
    logger.info("%s is the final checkpoint of this run: nothing left to train", resume_from)
    saved = read_metrics(resume_from) if resume_from is not None and run.placement.is_main else {}
    return TrainingOutcome(
        validation_metrics={k: v for k, v in saved.items() if k.startswith("eval/")},
        test_metrics={k: v for k, v in saved.items() if k.startswith(metric_names.TEST_PREFIX)},
        start_epoch=run.progress.epoch,
        epochs_run=0,
        wall_time_s=time.perf_counter() - started,
        final_checkpoint_dir=None,
    )
