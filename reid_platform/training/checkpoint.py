"""Training-state checkpoints: everything needed to continue a run exactly where it stopped.

One file holds the model, the optimizer, the LR scheduler, the gradient scaler (when given),
the progress counters, the random-stream states and a small `extra` mapping, all as tensors and
plain Python values, so `torch.load(weights_only=True)` reads it (no pickled objects, no code
run at load time). Writes are atomic: a temporary file in the same folder, fsynced, then
`os.replace`, so a crash mid-write leaves the previous checkpoint intact.
"""

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from reid_platform.training.errors import TrainingError
from reid_platform.training.rng_state import capture_rng_state, restore_rng_state

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


class Stateful(Protocol):
    """Anything with `state_dict` / `load_state_dict` (a GradScaler, a sampler)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any], /) -> None: ...


@dataclass(frozen=True, kw_only=True)
class TrainingProgress:
    """Counters saved with the state; the loop defines them, this module stores them verbatim.

    epoch: completed epochs (the next epoch to run). iteration: completed optimizer steps over
    the whole run (the scheduler's position). sampler_epoch: the epoch the training sampler
    was last set to, for samplers that reshuffle per epoch.
    """

    epoch: int
    iteration: int
    sampler_epoch: int


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside `DistributedDataParallel` / `torch.compile` wrappers, so the saved
    keys never carry a `module.` or `_orig_mod.` prefix."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif isinstance(original := getattr(model, "_orig_mod", None), nn.Module):
            model = original  # torch.compile's OptimizedModule
        else:
            return model


def save_training_state(
    path: Path,
    *,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    progress: TrainingProgress,
    scaler: Stateful | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the training state to `path` atomically (parent folders are created).

    `extra` must hold only tensors and plain values (it is checked by the weights-only load).
    """
    state: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "progress": asdict(progress),
        "rng": capture_rng_state(),
        "extra": dict(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_training_state(
    path: Path,
    *,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    scaler: Stateful | None = None,
    map_location: torch.device | str = "cpu",
    restore_rng: bool = True,
) -> tuple[TrainingProgress, dict[str, Any]]:
    """Load a `save_training_state` file into the given objects; → (progress, extra).

    Build the objects as for a fresh run first (same config): the scheduler's constructor
    resets the optimizer's LRs, and loading then puts back the saved ones. The random streams
    are restored last (unless `restore_rng=False`), so the next draws continue the saved run.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"training checkpoint {path} does not exist") from None
    except Exception as error:
        raise TrainingError(f"training checkpoint {path} cannot be read: {error}") from error
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise TrainingError(f"{path} is not a training checkpoint of format {FORMAT_VERSION}")
    unwrap_model(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None:
        if not state["scaler"]:  # None, or {} from a disabled (CPU / bf16) scaler
            logger.info("%s holds no gradient-scaler state; the scaler starts fresh", path)
        else:
            scaler.load_state_dict(state["scaler"])
    if restore_rng:
        restore_rng_state(state["rng"])
    return TrainingProgress(**state["progress"]), state["extra"]
