"""The distillation part of a training step: the teacher's forward pass on the student's batch
and the distillation loss terms (`losses.distillation`)."""

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from reid_platform.config import ReidConfig
from reid_platform.losses.build import build_distillation_loss
from reid_platform.losses.distillation import DistillationLoss
from reid_platform.training.precision import MixedPrecision
from reid_platform.training.teacher import (
    DistillationFiles,
    Teacher,
    check_teacher_fits,
    load_teacher,
    teacher_file,
)

logger = logging.getLogger(__name__)


class Distiller:
    """`distiller(images, student_output)` → {"distill_logit": …, "distill_pkt": …}, weighted.

    The teacher runs on the same augmented batch as the student (Beyer et al.'s consistency:
    never on cached outputs or another view), under no-grad and the student's autocast; its
    output is its retrieval embedding (B, D_t) and margin-free class scores (B, C) per head,
    in its own mode (see `Teacher`). The terms are computed in float32 (the loss turns
    autocast off: PKT's 1e-7 floor underflows in fp16).
    """

    def __init__(
        self, *, teacher: Teacher, loss: DistillationLoss, precision: MixedPrecision
    ) -> None:
        forward_scores = getattr(teacher.model, "forward_scores", None)
        if not callable(forward_scores):
            raise TypeError(f"{type(teacher.model).__name__} has no forward_scores(images)")
        self.teacher = teacher
        self.loss = loss
        self.precision = precision
        self._forward_scores: Callable[[Tensor], Any] = forward_scores

    def __call__(self, images: Tensor, student_output: Any) -> dict[str, Tensor]:
        """images: the student's batch (B, 3, H, W) 0-255 on the teacher's device;
        student_output: the student's training `ModelOutput` → weighted terms (scalars)."""
        with torch.no_grad(), self.precision.autocast():
            teacher_output = self._forward_scores(images)
        terms: dict[str, Tensor] = self.loss(student_output, teacher_output)
        return terms


def build_distiller(
    config: ReidConfig,
    files: DistillationFiles,
    *,
    num_classes: int,
    label_map: str,
    precision: MixedPrecision,
    device: torch.device,
) -> Distiller | None:
    """The teacher (on this worker's `device`, checked against the student: see
    `check_teacher_fits`) and the distillation terms; None unless `distillation.enabled`."""
    if not config.distillation.enabled:
        return None
    path, name = teacher_file(config, files)
    teacher = load_teacher(path, name=name, device=device, mode=config.distillation.teacher_mode)
    check_teacher_fits(teacher, config, num_classes=num_classes, label_map=label_map)
    logger.info(
        "teacher %s: %s %s, %.2f M parameters, %s mode, on %s",
        name,
        teacher.config.model.kind,
        teacher.config.model.backbone.name,
        teacher.parameter_count() / 1e6,
        teacher.mode,
        teacher.device,
    )
    loss = build_distillation_loss(config.distillation)
    return Distiller(teacher=teacher, loss=loss, precision=precision)
