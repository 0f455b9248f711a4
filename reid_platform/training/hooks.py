"""What the training loop tells the outside world: where a worker runs, per-iteration progress,
per-epoch results, and the hooks that receive them (Ray and MLflow live behind these hooks)."""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class WorkerPlacement:
    """One data-parallel worker: its rank among `world_size` and the torch device it trains on
    (`cpu`, `cuda`, `cuda:1`, …)."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, world_size={self.world_size})")

    @property
    def is_main(self) -> bool:
        """Rank 0: the worker that evaluates, writes checkpoints and whose metrics are logged."""
        return self.rank == 0


@dataclass(frozen=True, kw_only=True)
class IterationLog:
    """Progress every `training.log_period` iterations (rank-local numbers).

    epoch: 0-based epoch of the logged iteration. iteration: 0-based global index of the
    iteration just completed (counted over the whole run; iteration + 1 are done).
    losses: "loss" (the total) and each weighted term, averaged over the iterations since the
    previous log. lr: the base learning rate (`solver.optimizer.base_lr` × schedule factor) the
    logged iteration used. images_per_sec: this rank's throughput since the previous log.
    eta_s: remaining iterations × mean seconds per training iteration so far (evaluation
    excluded).
    """

    epoch: int
    iteration: int
    iters_per_epoch: int
    max_epochs: int
    losses: dict[str, float]
    lr: float
    images_per_sec: float
    eta_s: float


@dataclass(frozen=True, kw_only=True)
class EpochEnd:
    """One finished epoch.

    epoch: 0-based epoch just finished.
    metrics: `train/loss`, `train/loss_<term>`, `train/lr`, `train/images_per_sec` (epoch means,
        this rank's); on rank 0 also `eval/*` validation metrics when the epoch was evaluated,
        and on the final epoch `test/*` metrics (the one test evaluation of the run).
    checkpoint_dir: rank 0, when a checkpoint was written this epoch; else None.
    final: the last epoch of the run; its checkpoint dir also holds the final files.
    """

    epoch: int
    metrics: dict[str, float]
    checkpoint_dir: Path | None
    final: bool


class TrainingHooks:
    """Receives the loop's progress; every method is a no-op here. Subclass and override.

    Hooks run synchronously on the training thread; an exception raised by a hook stops
    training and propagates out of `train` (after `on_epoch_end`, the epoch's checkpoint is
    already on disk).
    """

    def on_iteration(self, log: IterationLog) -> None:
        """Every `training.log_period` iterations, on every rank."""

    def on_epoch_end(self, end: EpochEnd) -> None:
        """After every epoch, on every rank (the same number of calls on each)."""


@dataclass(frozen=True, kw_only=True)
class TrainingOutcome:
    """What one worker's `train` call produced.

    validation_metrics: the last validation evaluation's `eval/*` metrics (rank 0; empty on
        other ranks, or when there is no validation split).
    test_metrics: the final `test/*` metrics (rank 0; empty elsewhere).
    start_epoch: the first epoch this call ran (> 0 when resumed); epochs_run: how many it ran.
    final_checkpoint_dir: rank 0's final checkpoint folder, None on other ranks (and when a
        resumed run had already finished, so nothing ran).
    teacher_device: the device this worker's distillation teacher ran on; None without one.
    """

    validation_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    start_epoch: int
    epochs_run: int
    wall_time_s: float
    final_checkpoint_dir: Path | None
    teacher_device: str | None = None
