"""The checkpoint folders training writes (rank 0): `<work_dir>/checkpoints/epoch_XXXX/`.

    state.pt      training state (`checkpoint.save_training_state`): model, optimizer, scheduler,
                  gradient scaler, progress (incl. sampler epoch), random streams
    model.pt      the model file evaluation and export read (`modeling.model_file`)
    final folder only:
    metrics.json  {metric name: value}: the last validation `eval/*` and the `test/*` metrics
    roc/, ranklist/   the test evaluation's report files (`<dataset>/roc/…` with several)

XXXX is the 0-based epoch just finished, as in `EpochEnd.epoch` and the MLflow step.
"""

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from reid_platform.config import ReidConfig, config_hash
from reid_platform.modeling.model_file import save_model_file
from reid_platform.training.build import Solver
from reid_platform.training.checkpoint import (
    TrainingProgress,
    load_training_state,
    save_training_state,
)
from reid_platform.training.errors import TrainingError

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
LABEL_MAP_KEY = "label_map"
"""The model file's `source` entry holding the training split's label-map digest."""


def checkpoint_folder(work_dir: Path, epoch: int) -> Path:
    """`<work_dir>/checkpoints/epoch_XXXX` for 0-based `epoch`."""
    return Path(work_dir) / "checkpoints" / f"epoch_{epoch:04d}"


@dataclass(frozen=True, kw_only=True)
class RunIdentity:
    """What a checkpoint records about the run that wrote it, checked on resume."""

    config: ReidConfig
    num_classes: int
    world_size: int
    label_map: str | None = None
    """`data.splits.label_map_digest` of the training split, recorded in the model file so a
    distillation student can check it classifies into the same classes."""

    def extra(self) -> dict[str, object]:
        return {"config_hash": config_hash(self.config), "world_size": self.world_size}


def write_checkpoint(
    folder: Path,
    *,
    model: nn.Module,
    solver: Solver,
    progress: TrainingProgress,
    identity: RunIdentity,
) -> Path:
    """Write `state.pt` and `model.pt` of the bare `model` into `folder`; → `folder`."""
    save_training_state(
        folder / STATE_FILE,
        model=model,
        optimizer=solver.optimizer,
        scheduler=solver.scheduler,
        progress=progress,
        scaler=solver.precision.scaler,
        extra=identity.extra(),
    )
    source: dict[str, object] = {
        "format": "train",
        "epoch": progress.epoch - 1,
        "iteration": progress.iteration,
    }
    if identity.label_map is not None:
        source[LABEL_MAP_KEY] = identity.label_map
    save_model_file(
        model,
        config=identity.config,
        num_classes=identity.num_classes,
        source=source | {"config_hash": config_hash(identity.config)},
        out=folder / MODEL_FILE,
    )
    return folder


def read_checkpoint(
    folder: Path, *, model: nn.Module, solver: Solver, identity: RunIdentity, device: str
) -> TrainingProgress:
    """Load `folder/state.pt` into the bare `model` and the solver; → the saved progress.

    A checkpoint from another config or world size is loaded with a warning: the run goes on,
    but it no longer continues the interrupted one exactly.
    """
    progress, extra = load_training_state(
        Path(folder) / STATE_FILE,
        model=model,
        optimizer=solver.optimizer,
        scheduler=solver.scheduler,
        scaler=solver.precision.scaler,
        map_location=device,
    )
    for key, expected in identity.extra().items():
        if key in extra and extra[key] != expected:
            logger.warning(
                "resuming from %s written with %s %s (now %s)", folder, key, extra[key], expected
            )
    return progress


def write_metrics(folder: Path, metrics: dict[str, float]) -> Path:
    """`folder/metrics.json`: {name: value}, non-finite values as null."""
    path = Path(folder) / METRICS_FILE
    values = {name: (value if math.isfinite(value) else None) for name, value in metrics.items()}
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    return path


def read_metrics(folder: Path) -> dict[str, float]:
    """The metrics a final folder holds ({} when it has no `metrics.json`)."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise TrainingError(f"{path} is not valid JSON ({error.msg})") from None
    return {name: float("nan") if value is None else float(value) for name, value in values.items()}
