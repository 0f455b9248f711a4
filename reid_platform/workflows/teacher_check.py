"""Before a distillation run trains: pin its teacher, check it fits the student, and check it is
the model its run says it is.

FastReID's most reported distillation trap is a teacher that silently loads partly random
weights (a non-strict load that skips wrong-shape tensors). Here the teacher is rebuilt from
the config in its own model file with a strict load, and then re-evaluated on its validation
split: the mAP must reproduce the `eval/mAP` its run logged (within `MAP_TOLERANCE`), else the
run is refused before anything is trained. The figures measured here are logged on the
distillation run as `teacher/*`, so the MLflow UI shows teacher and student side by side.
"""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from reid_platform import metric_names
from reid_platform.config import ReidConfig
from reid_platform.data.build import ReidData, build_data
from reid_platform.data.splits import label_map_digest
from reid_platform.errors import ReidError
from reid_platform.modeling.model_file import LoadedModel, load_model_file, read_model_config
from reid_platform.tracking.connection import absolute_tracking_uri
from reid_platform.tracking.model_files import PinnedModels, RunModelFile, pin_run_model
from reid_platform.tracking.run_artifacts import final_run_metrics, get_run
from reid_platform.training.teacher import (
    check_student_init,
    check_teacher_fits,
    no_teacher,
    teacher_from,
)
from reid_platform.training.validation import TrainingEvaluator

logger = logging.getLogger(__name__)

MAP_TOLERANCE = 1e-3
"""How far the re-measured validation mAP of a teacher may be from the one its run logged."""

_FROM_TEACHER_RUN = (
    metric_names.test_metric(metric_names.MAP),
    metric_names.test_metric(metric_names.RANK1),
    metric_names.EXPORT_LATENCY_MS,
    metric_names.EXPORT_IMAGES_PER_SEC,
)


@dataclass(frozen=True)
class TeacherCheck:
    """What the check found: the pinned files and the `teacher/*` metrics (its validation
    figures measured now, its size, its run's test mAP and speed) to log on the run."""

    models: PinnedModels
    metrics: dict[str, float]

    @property
    def sha256(self) -> str | None:
        return self.models.teacher.sha256 if self.models.teacher is not None else None


def evaluation_device() -> str:
    """Where the driver evaluates a teacher or a champion: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _validation_map(loaded: LoadedModel, data: ReidData) -> dict[str, float]:
    evaluator = TrainingEvaluator(loaded.config, data, device=evaluation_device())
    if not evaluator.has_validation:
        return {}
    return evaluator.validate(loaded.model.to(evaluator.device)).metrics


def _pin_student_init(config: ReidConfig, uri: str, scratch: Path) -> RunModelFile | None:
    """Pin the student-init run's model file, refusing another architecture."""
    run_id = config.distillation.student_init_run_id
    if run_id is None:
        return None
    path, pinned = pin_run_model(run_id, uri, scratch / "student_init")
    check_student_init(read_model_config(path), config, name=f"run {run_id}")
    return pinned


def _reproduces(name: str, measured: dict[str, float], logged: dict[str, float]) -> None:
    """Refuse a teacher whose validation mAP is not the one its run logged."""
    now, then = measured.get(metric_names.MAP), logged.get(metric_names.MAP)
    if now is None or then is None:
        logger.warning(
            "teacher %s: %s, so its weights are not checked against its run",
            name,
            "no validation split" if now is None else "its run logged no validation mAP",
        )
        return
    if not (math.isfinite(now) and math.isfinite(then)) or abs(now - then) > MAP_TOLERANCE:
        raise ReidError(
            f"the teacher checkpoint of {name} gives {now:.4f} validation mAP, but the run "
            f"logged {then:.4f}: its weights or its data are not those it was trained with"
        )
    logger.info("teacher %s reproduces its validation mAP (%.4f, logged %.4f)", name, now, then)


def check_teacher(
    config: ReidConfig,
    *,
    tracking_uri: str,
    working_dir: Path,
    scratch: Path,
    teacher_file: tuple[Path, RunModelFile] | None = None,
) -> TeacherCheck:
    """Pin and check the teacher of `config` (distillation enabled) before training.

    teacher_file: the teacher run's model file, already pinned (else it is downloaded here).
    Raises `ReidError` in one sentence when there is no teacher, its run or model file is
    unknown, it does not fit the student (`check_teacher_fits`), the student-init run has
    another architecture, or the teacher does not reproduce its logged validation mAP.
    """
    uri = absolute_tracking_uri(tracking_uri, working_dir)
    distillation = config.distillation
    run_id = distillation.teacher_run_id
    pinned: RunModelFile | None = None
    if run_id is not None:
        if teacher_file is not None and teacher_file[1].run_id == run_id:
            path, pinned = teacher_file
        else:
            path, pinned = pin_run_model(run_id, uri, scratch / "teacher")
        name, logged = f"run {run_id}", final_run_metrics(get_run(run_id, uri), uri)
    elif distillation.teacher_weights is not None:
        path, name, logged = Path(distillation.teacher_weights), distillation.teacher_weights, {}
    else:
        raise no_teacher()
    models = PinnedModels(uri, teacher=pinned, student_init=_pin_student_init(config, uri, scratch))
    loaded = load_model_file(path)
    student_data = build_data(config.data)
    teacher = teacher_from(loaded, name=name, device=torch.device("cpu"), mode="eval")
    check_teacher_fits(
        teacher,
        config,
        num_classes=student_data.num_classes,
        label_map=label_map_digest(student_data.train),
    )
    own_data = student_data if loaded.config.data == config.data else build_data(loaded.config.data)
    measured = _validation_map(loaded, own_data)
    _reproduces(name, measured, logged)
    metrics = {metric_names.teacher_metric(k): v for k, v in measured.items()}
    metrics[metric_names.teacher_metric(metric_names.MODEL_PARAMS)] = teacher.parameter_count()
    for key in _FROM_TEACHER_RUN:
        if key in logged:
            metrics[metric_names.teacher_metric(key)] = logged[key]
    return TeacherCheck(models, metrics)
