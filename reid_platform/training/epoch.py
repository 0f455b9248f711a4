"""One optimizer step and one epoch of them, with per-iteration progress for the hooks.

A step: `model.train()` → freeze update → forward with targets under autocast → weighted loss
terms (and the distillation terms, the teacher run on the same batch) → non-finite check
(naming the iteration and the term) → backward, clip, optimizer step (through
`MixedPrecision`) → LR scheduler step. Loss values stay on the device and are read
back once per log and once per epoch.
"""

import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from reid_platform.training.build import Solver
from reid_platform.training.distiller import Distiller
from reid_platform.training.hooks import IterationLog, TrainingHooks
from reid_platform.training.precision import check_finite_losses

logger = logging.getLogger(__name__)

Objective = Callable[[Any, Tensor], dict[str, Tensor]]
"""(model output, targets (B,)) → {term name: weighted scalar loss}."""

TOTAL = "loss"
"""The key of the summed loss in progress logs."""

_SCHEDULER_BEFORE_OPTIMIZER = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step"


@dataclass(frozen=True, kw_only=True)
class TrainingStep:
    """Everything one step needs.

    model: what the forward runs (DDP-wrapped on several ranks); `bare` is the model inside
    it, on which the solver (optimizer groups, freeze) was built. `base_lr` turns the first
    parameter group's LR back into the reported base LR. `distiller`: the teacher and the
    distillation terms added to the objective's, when distilling.
    """

    model: nn.Module
    bare: nn.Module
    objective: Objective
    solver: Solver
    device: torch.device
    channels_last: bool
    base_lr: float
    distiller: Distiller | None = None

    def run(self, batch: Mapping[str, Tensor], iteration: int) -> tuple[Tensor, list[str]]:
        """One optimizer step on `batch` (images uint8 (B, 3, H, W), pids (B,)) at 0-based
        global `iteration`; → (detached [total, *terms] losses (1 + T,), term names)."""
        self.model.train()
        if self.solver.freeze is not None:
            self.solver.freeze.update(iteration)
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        images = batch["images"].to(self.device, non_blocking=True, memory_format=memory_format)
        targets = batch["pids"].to(self.device, non_blocking=True)
        with self.solver.precision.autocast():
            output = self.model(images, targets)
            terms = self.objective(output, targets)
        if self.distiller is not None:
            terms = {**terms, **self.distiller(images, output)}
        check_finite_losses(terms, iteration=iteration)
        total = torch.stack([value.float() for value in terms.values()]).sum()
        self.solver.optimizer.zero_grad(set_to_none=True)
        self.solver.precision.backward(total)
        self.solver.precision.step(
            self.solver.optimizer,
            parameters=self.bare.parameters(),
            max_grad_norm=self.solver.max_grad_norm,
        )
        with warnings.catch_warnings():
            # When the fp16 scaler skipped the step (overflow), torch warns that the schedule
            # steps ahead of the optimizer; ours is a function of the iteration by design.
            warnings.filterwarnings("ignore", _SCHEDULER_BEFORE_OPTIMIZER, UserWarning)
            self.solver.scheduler.step()
        values = torch.stack([total.detach(), *(v.detach().float() for v in terms.values())])
        return values, list(terms)

    def current_lr(self) -> float:
        """The base LR (× schedule factor) the optimizer holds now."""
        return reported_lr(self.solver.optimizer, self.base_lr)


def reported_lr(optimizer: Optimizer, base_lr: float) -> float:
    """`base_lr` × the schedule's current factor, read off the first parameter group (whose
    own LR also carries its bias / head factor)."""
    group = optimizer.param_groups[0]
    return float(group["lr"]) * base_lr / float(group.get("initial_lr", group["lr"]))


@dataclass
class _Window:
    """Loss sums, images and time since a starting point (the last log, or the epoch start)."""

    started: float = field(default_factory=time.perf_counter)
    sums: Tensor | None = None
    steps: int = 0
    images: int = 0

    def add(self, values: Tensor, images: int) -> None:
        self.sums = values if self.sums is None else self.sums + values
        self.steps += 1
        self.images += images

    def means(self, names: list[str]) -> dict[str, float]:
        if self.sums is None:
            return {}
        means = (self.sums / self.steps).tolist()
        return dict(zip([TOTAL, *names], means, strict=True))

    def images_per_sec(self) -> float:
        return self.images / max(time.perf_counter() - self.started, 1e-9)


@dataclass
class TrainingClock:
    """Seconds spent in training iterations by this process, for the ETA."""

    seconds: float = 0.0
    iterations: int = 0

    def eta(self, remaining: int) -> float:
        return remaining * self.seconds / max(self.iterations, 1)


@dataclass(frozen=True, kw_only=True)
class EpochStats:
    """One epoch on this rank: mean losses ("loss" and each term), the base LR of its last
    iteration, images per second, iterations run."""

    losses: dict[str, float]
    lr: float
    images_per_sec: float
    iterations: int


@dataclass(frozen=True, kw_only=True)
class EpochPlan:
    """Where an epoch sits in the run: its index, its first global iteration, the run's size
    and how often to report progress."""

    epoch: int
    first_iteration: int
    iters_per_epoch: int
    max_epochs: int
    log_period: int


def run_epoch(
    step: TrainingStep,
    batches: Iterable[Mapping[str, Tensor]],
    *,
    plan: EpochPlan,
    hooks: TrainingHooks,
    clock: TrainingClock,
) -> EpochStats:
    """Run every batch of `batches` as one step; progress every `plan.log_period` iterations."""
    epoch_window, log_window = _Window(), _Window()
    names: list[str] = []
    iteration, lr = plan.first_iteration, step.current_lr()
    last = time.perf_counter()
    for iteration, batch in enumerate(batches, start=plan.first_iteration):
        lr = step.current_lr()  # the LR this iteration uses (the scheduler steps after it)
        values, names = step.run(batch, iteration)
        size = int(batch["images"].shape[0])
        epoch_window.add(values, size)
        log_window.add(values, size)
        now = time.perf_counter()  # data loading included, evaluation not
        clock.seconds, clock.iterations, last = (
            clock.seconds + now - last,
            clock.iterations + 1,
            now,
        )
        if (iteration + 1) % plan.log_period == 0:
            _log(log_window, names, plan=plan, iteration=iteration, lr=lr, hooks=hooks, clock=clock)
            log_window = _Window()
    if epoch_window.steps == 0:
        raise RuntimeError(f"epoch {plan.epoch} yielded no training batches")
    return EpochStats(
        losses=epoch_window.means(names),
        lr=lr,
        images_per_sec=epoch_window.images_per_sec(),
        iterations=epoch_window.steps,
    )


def _log(
    window: _Window,
    names: list[str],
    *,
    plan: EpochPlan,
    iteration: int,
    lr: float,
    hooks: TrainingHooks,
    clock: TrainingClock,
) -> None:
    total = plan.iters_per_epoch * plan.max_epochs
    log = IterationLog(
        epoch=plan.epoch,
        iteration=iteration,
        iters_per_epoch=plan.iters_per_epoch,
        max_epochs=plan.max_epochs,
        losses=window.means(names),
        lr=lr,
        images_per_sec=window.images_per_sec(),
        eta_s=clock.eta(total - iteration - 1),
    )
    terms = " ".join(f"{name} {value:.4f}" for name, value in log.losses.items())
    logger.info(
        "epoch %d/%d it %d/%d %s lr %.3g %.1f img/s eta %.0fs",
        plan.epoch + 1,
        plan.max_epochs,
        iteration + 1,
        total,
        terms,
        lr,
        log.images_per_sec,
        log.eta_s,
    )
    hooks.on_iteration(log)
