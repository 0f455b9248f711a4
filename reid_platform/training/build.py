"""Solver config → optimizer, LR scheduler, freeze, mixed precision: the only place a
`SolverConfig` meets the training components."""

from dataclasses import dataclass

import torch
from torch import nn
from torch.optim import Optimizer

from reid_platform.config.solver import OptimizerConfig, PrecisionConfig, SolverConfig
from reid_platform.errors import ConfigError
from reid_platform.training.freeze import ModuleFreeze
from reid_platform.training.param_groups import head_module_names, parameter_groups
from reid_platform.training.precision import MixedPrecision
from reid_platform.training.schedule import (
    ConstantSchedule,
    CosineSchedule,
    EpochSchedule,
    IterationLRScheduler,
    LRSchedule,
    MultiStepSchedule,
    Warmup,
)


@dataclass(frozen=True, kw_only=True)
class Solver:
    """What one training step needs besides the model and the data.

    freeze is None when nothing is frozen; max_grad_norm is None when clipping is off.
    """

    optimizer: Optimizer
    scheduler: IterationLRScheduler
    freeze: ModuleFreeze | None
    precision: MixedPrecision
    max_grad_norm: float | None


def build_optimizer(config: OptimizerConfig, model: nn.Module) -> Optimizer:
    """The configured optimizer over the reference's parameter groups of `model` (heads: its
    `EmbeddingHead` children, see `param_groups`)."""
    groups = parameter_groups(
        model,
        base_lr=config.base_lr,
        weight_decay=config.weight_decay,
        weight_decay_norm=config.weight_decay_norm,
        weight_decay_bias=config.weight_decay_bias,
        bias_lr_factor=config.bias_lr_factor,
        heads_lr_factor=config.heads_lr_factor,
        head_modules=head_module_names(model),
    )
    if config.kind == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.base_lr,
            momentum=config.sgd.momentum,
            nesterov=config.sgd.nesterov,
        )
    block = config.adam if config.kind == "adam" else config.adamw
    optimizer_type = torch.optim.Adam if config.kind == "adam" else torch.optim.AdamW
    return optimizer_type(groups, lr=config.base_lr, betas=block.betas, eps=block.eps)


def build_lr_schedule(config: SolverConfig, *, iters_per_epoch: int) -> LRSchedule:
    """The pure LR-factor function of the global iteration (see `schedule`)."""
    schedule = config.schedule
    main: EpochSchedule
    if schedule.kind == "multistep":
        main = MultiStepSchedule(
            milestones=schedule.multistep.milestones, gamma=schedule.multistep.gamma
        )
    elif schedule.kind == "cosine":
        if schedule.cosine.eta_min > config.optimizer.base_lr:
            raise ConfigError(
                f"solver.schedule.cosine.eta_min ({schedule.cosine.eta_min:g}) is above "
                f"solver.optimizer.base_lr ({config.optimizer.base_lr:g}); the cosine would rise"
            )
        main = CosineSchedule(
            max_epochs=config.max_epochs,
            delay_epochs=schedule.cosine.delay_epochs,
            base_lr=config.optimizer.base_lr,
            eta_min=schedule.cosine.eta_min,
        )
    else:
        main = ConstantSchedule()
    warmup = Warmup(kind=config.warmup.kind, iters=config.warmup.iters, factor=config.warmup.factor)
    return LRSchedule(iters_per_epoch=iters_per_epoch, warmup=warmup, main=main)


def build_lr_scheduler(
    config: SolverConfig, optimizer: Optimizer, *, iters_per_epoch: int
) -> IterationLRScheduler:
    """A scheduler stepped once per iteration (its LRs start at iteration 0's)."""
    schedule = build_lr_schedule(config, iters_per_epoch=iters_per_epoch)
    return IterationLRScheduler(optimizer, schedule=schedule)


def build_freeze(config: SolverConfig, model: nn.Module) -> ModuleFreeze | None:
    """The configured freeze (not yet applied: call `update(iteration)`), or None for none."""
    freeze = config.freeze
    if freeze.iters == 0 or not freeze.modules:
        return None
    return ModuleFreeze(model=model, module_names=freeze.modules, iters=freeze.iters)


def build_mixed_precision(config: PrecisionConfig, *, device: torch.device) -> MixedPrecision:
    """Autocast + scaler for `device` (a notice and fp32 on CPU when amp is asked)."""
    return MixedPrecision(device=device, amp=config.amp, dtype=config.dtype)


def build_solver(
    config: SolverConfig, model: nn.Module, *, iters_per_epoch: int, device: torch.device
) -> Solver:
    """Everything the solver section configures, for a model already on `device`.

    Build it on the bare model (before DDP or `torch.compile` wrap it) so parameter and module
    names are the model's own.
    """
    optimizer = build_optimizer(config.optimizer, model)
    return Solver(
        optimizer=optimizer,
        scheduler=build_lr_scheduler(config, optimizer, iters_per_epoch=iters_per_epoch),
        freeze=build_freeze(config, model),
        precision=build_mixed_precision(config.precision, device=device),
        max_grad_norm=config.grad_clip.max_norm if config.grad_clip.enabled else None,
    )
