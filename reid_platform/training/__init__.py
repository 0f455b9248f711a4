"""The framework-free training core: parameter groups, learning-rate schedules, freezing,
mixed precision, training-state checkpoints and the loop. Ray and MLflow reach it only through
hooks (`TrainingHooks`)."""

from reid_platform.training.hooks import (
    EpochEnd,
    IterationLog,
    TrainingHooks,
    TrainingOutcome,
    WorkerPlacement,
)
from reid_platform.training.loop import train

__all__ = [
    "EpochEnd",
    "IterationLog",
    "TrainingHooks",
    "TrainingOutcome",
    "WorkerPlacement",
    "train",
]
