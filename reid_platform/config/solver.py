"""Optimiser, learning-rate schedule, warmup, backbone freeze, precision and clipping.

Multi-step milestones are absolute epochs counted from the start of training (warmup included);
the reference toolbox silently shifts them by the warmup length.
"""

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from reid_platform.config.base import Float, Section, VariantSection


class SGDConfig(Section):
    momentum: Float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False


class AdamConfig(Section):
    betas: tuple[Float, Float] = (0.9, 0.999)
    eps: Float = Field(1e-8, gt=0.0)


class OptimizerConfig(VariantSection):
    """Optimiser and the reference's parameter groups (norm/bias decay, bias and head LR factor)."""

    variant_blocks: ClassVar[tuple[str, ...]] = ("sgd", "adam", "adamw")
    kind: Literal["adam", "adamw", "sgd"] = "adam"
    base_lr: Float = Field(3.5e-4, gt=0.0)
    weight_decay: Float = Field(5e-4, ge=0.0)
    weight_decay_norm: Float = Field(5e-4, ge=0.0)
    weight_decay_bias: Float = Field(5e-4, ge=0.0)
    bias_lr_factor: Float = Field(1.0, gt=0.0)
    heads_lr_factor: Float = Field(1.0, gt=0.0)
    sgd: SGDConfig = SGDConfig()
    adam: AdamConfig = AdamConfig()
    adamw: AdamConfig = AdamConfig()


class MultiStepConfig(Section):
    milestones: tuple[int, ...] = (40, 90)
    gamma: Float = Field(0.1, gt=0.0, le=1.0)


class CosineConfig(Section):
    """Cosine from the base LR to `eta_min`, after `delay_epochs` at the base LR (0: none)."""

    delay_epochs: int = Field(0, ge=0)
    eta_min: Float = Field(7e-7, ge=0.0)


class ScheduleConfig(VariantSection):
    variant_blocks: ClassVar[tuple[str, ...]] = ("multistep", "cosine")
    kind: Literal["multistep", "cosine", "constant"] = "multistep"
    multistep: MultiStepConfig = MultiStepConfig()
    cosine: CosineConfig = CosineConfig()


class WarmupConfig(Section):
    """Per-iteration warmup from `factor × base_lr` over `iters` iterations (0: no warmup)."""

    kind: Literal["linear", "constant", "exponential"] = "linear"
    iters: int = Field(0, ge=0)
    factor: Float = Field(0.1, gt=0.0, le=1.0)


class FreezeConfig(Section):
    """Modules (exact names, e.g. `backbone`) frozen, BN in eval mode, for `iters` iterations."""

    iters: int = Field(0, ge=0)
    modules: tuple[str, ...] = ("backbone",)


class GradientClipConfig(Section):
    enabled: bool = False
    max_norm: Float = Field(5.0, gt=0.0)


class PrecisionConfig(Section):
    """Mixed precision on GPU (ignored on CPU, with a notice)."""

    amp: bool = False
    dtype: Literal["bf16", "fp16"] = "bf16"


class SolverConfig(Section):
    max_epochs: int = Field(120, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    warmup: WarmupConfig = WarmupConfig()
    freeze: FreezeConfig = FreezeConfig()
    grad_clip: GradientClipConfig = GradientClipConfig()
    precision: PrecisionConfig = PrecisionConfig()

    @model_validator(mode="after")
    def _milestones_in_range(self) -> Self:
        if self.schedule.kind == "multistep":
            milestones = self.schedule.multistep.milestones
            if list(milestones) != sorted(milestones) or any(m < 1 for m in milestones):
                raise ValueError("schedule.multistep.milestones must be increasing positive epochs")
        if self.schedule.kind == "cosine" and self.schedule.cosine.delay_epochs >= self.max_epochs:
            raise ValueError("schedule.cosine.delay_epochs must be smaller than max_epochs")
        return self
