"""Training-loop settings that are not the solver: device, evaluation cadence, checkpoints."""

from typing import Literal

from pydantic import Field

from reid_platform.config.base import Section


class TrainingConfig(Section):
    """`device: auto` uses a GPU when one is visible, else the CPU (stated once in the log)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_period: int = Field(10, ge=1)
    checkpoint_period: int = Field(10, ge=1)
    log_period: int = Field(50, ge=1)
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False
