"""Learning-rate schedules as pure functions of the global iteration, and the torch scheduler.

The LR of a group at global iteration `it` (0-based, counted over the whole run) is

    group_lr(it) = base_lr × group_lr_factor × warmup(it) × main(it / iters_per_epoch)

- `warmup(it)` is 1 from `warmup_iters` on; before that, with α = it / warmup_iters:
  linear `factor·(1−α) + α`, constant `factor`, exponential `factor^(1−α)` (the reference's
  formulas). It multiplies the main schedule rather than replacing it.
- `main(epoch)` is evaluated at the *fractional* epoch `it / iters_per_epoch`, i.e. per iteration:
  - multistep: `gamma ** (number of milestones <= epoch)`. Milestones are ABSOLUTE epochs counted
    from iteration 0, warmup included: with milestone 40 the LR drops on the first iteration of
    epoch index 40. (The reference only starts stepping its epoch scheduler after the warmup, so
    its milestones are shifted by the warmup's length in epochs: BoT's "40" drops at epoch 49.)
    Integer milestones make this identical to stepping once per epoch.
  - cosine: the base LR until `delay_epochs` (the paper's delayed cosine; 0 gives plain cosine),
    then `eta_min + (base − eta_min)·(1 + cos(π·p))/2` with p = (epoch − delay) / (max − delay)
    clamped to [0, 1]; smooth within an epoch. `eta_min` is the absolute LR the *base* LR reaches;
    a group whose LR is `f × base` reaches `f × eta_min` (the curve is scaled, not shifted). The
    reference instead steps per epoch and starts its cosine after max(warmup epochs, delay).
  - constant: 1.
"""

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

WarmupKind = Literal["linear", "constant", "exponential"]


class EpochSchedule(Protocol):
    """The main schedule: an LR factor as a function of the fractional epoch (≥ 0)."""

    def factor(self, epoch: float) -> float: ...


@dataclass(frozen=True, kw_only=True)
class MultiStepSchedule:
    """× `gamma` at each of `milestones` (absolute epochs from the start, warmup included)."""

    milestones: tuple[int, ...]
    gamma: float

    def factor(self, epoch: float) -> float:
        return self.gamma ** sum(1 for milestone in self.milestones if epoch >= milestone)


@dataclass(frozen=True, kw_only=True)
class CosineSchedule:
    """Constant until `delay_epochs`, then cosine from `base_lr` to `eta_min` at `max_epochs`."""

    max_epochs: int
    delay_epochs: int
    base_lr: float
    eta_min: float

    def __post_init__(self) -> None:
        if not 0 <= self.delay_epochs < self.max_epochs:
            raise ValueError(
                f"delay_epochs must be in [0, {self.max_epochs}), not {self.delay_epochs}"
            )

    def factor(self, epoch: float) -> float:
        progress = (epoch - self.delay_epochs) / (self.max_epochs - self.delay_epochs)
        progress = min(max(progress, 0.0), 1.0)
        floor = self.eta_min / self.base_lr
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True, kw_only=True)
class ConstantSchedule:
    """The base LR throughout."""

    def factor(self, epoch: float) -> float:
        return 1.0


@dataclass(frozen=True, kw_only=True)
class Warmup:
    """Per-iteration warmup from `factor` × base LR over the first `iters` iterations."""

    kind: WarmupKind
    iters: int
    factor: float

    def factor_at(self, iteration: int) -> float:
        if iteration >= self.iters:
            return 1.0
        alpha = iteration / self.iters
        if self.kind == "linear":
            return self.factor * (1.0 - alpha) + alpha
        if self.kind == "constant":
            return self.factor
        if self.kind == "exponential":
            return float(self.factor ** (1.0 - alpha))
        raise ValueError(f"unknown warmup kind {self.kind!r}")


@dataclass(frozen=True, kw_only=True)
class LRSchedule:
    """The LR factor (relative to each group's initial LR) at a global iteration."""

    iters_per_epoch: int
    warmup: Warmup
    main: EpochSchedule

    def __post_init__(self) -> None:
        if self.iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch must be at least 1, not {self.iters_per_epoch}")

    def lr_factor(self, iteration: int) -> float:
        """Factor for global iteration `iteration` (0-based): warmup × main schedule."""
        if iteration < 0:
            raise ValueError(f"iteration must be non-negative, not {iteration}")
        epoch = iteration / self.iters_per_epoch
        return self.warmup.factor_at(iteration) * self.main.factor(epoch)


class IterationLRScheduler(LRScheduler):
    """Sets every group's LR to `initial_lr × schedule.lr_factor(iteration)`.

    Step it once after every optimizer step: `last_epoch` counts completed iterations, so after
    construction the LRs are those of iteration 0 and after n steps those of iteration n.
    `state_dict` holds only counters and numbers (no schedule object), so it round-trips
    through `torch.load(weights_only=True)`; the schedule itself comes from the config.
    """

    def __init__(self, optimizer: Optimizer, *, schedule: LRSchedule, last_epoch: int = -1) -> None:
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        factor = self.schedule.lr_factor(self.last_epoch)
        return [float(base_lr) * factor for base_lr in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "schedule")
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        stray = {"optimizer", "schedule"} & set(state_dict)
        if stray:
            raise ValueError(f"scheduler state must not contain {sorted(stray)}")
        self.__dict__.update(state_dict)
