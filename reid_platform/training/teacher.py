"""The distillation teacher: a model file rebuilt from its own config, frozen, and checked
against the student it is to teach.

The teacher is never a submodule of the student: it is not in the optimizer, the checkpoints,
a DDP wrapper or the exported graph, and `student.train()` / `.eval()` / `.to()` never reach it
(FastReID keeps its teachers in a plain list for the first reasons and then forgets to move
them: fast-reid#690). `load_teacher` moves it to the worker's device explicitly.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from reid_platform.config import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.modeling.model_file import LoadedModel, load_model_file, without_pretrained
from reid_platform.training.checkpoint_dir import LABEL_MAP_KEY

logger = logging.getLogger(__name__)

TeacherMode = Literal["eval", "train"]


@dataclass(frozen=True)
class Teacher:
    """A frozen teacher on its device.

    name: how messages name it (`run <id>` or the file path). mode: `eval` keeps its BN
    running statistics fixed; `train` lets BN use (and update) batch statistics, as
    FastReID's Distiller does. Its parameters never get gradients either way.
    """

    model: nn.Module
    config: ReidConfig
    num_classes: int
    label_map: str | None
    name: str
    mode: TeacherMode

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _frozen(model: nn.Module, mode: TeacherMode) -> nn.Module:
    model.requires_grad_(False)
    return model.train(mode == "train")


def load_teacher(path: Path, *, name: str, device: torch.device, mode: TeacherMode) -> Teacher:
    """The model file at `path`, rebuilt from the config it carries (strict load: every key
    must fit, so a partly random teacher cannot slip through), frozen, in `mode`, on
    `device`."""
    loaded = load_model_file(path)
    return teacher_from(loaded, name=name, device=device, mode=mode)


def teacher_from(
    loaded: LoadedModel, *, name: str, device: torch.device, mode: TeacherMode
) -> Teacher:
    """`loaded` as a frozen teacher on `device` (see `load_teacher`)."""
    label_map = loaded.source.get(LABEL_MAP_KEY)
    return Teacher(
        model=_frozen(loaded.model.to(device), mode),
        config=loaded.config,
        num_classes=loaded.num_classes,
        label_map=str(label_map) if label_map is not None else None,
        name=name,
        mode=mode,
    )


def _classifier_text(config: ReidConfig) -> str:
    classifier = config.model.classifier
    kind = classifier.kind
    block = getattr(classifier, kind, None)
    if block is None:
        return kind
    return f"{kind} (scale {block.scale:g}, margin {block.margin:g})"


def _head_count(config: ReidConfig) -> int:
    return 8 if config.model.kind == "mgn" else 1


def _logit_mismatch(
    teacher: Teacher, student: ReidConfig, num_classes: int, label_map: str
) -> str | None:
    """What stops the logit term, in words; None when the teacher's classes are the student's."""
    if teacher.num_classes == 0:
        return "its model file holds no classifier"
    if teacher.num_classes != num_classes:
        return (
            f"it classifies {teacher.num_classes} identities and the student's training split "
            f"has {num_classes}"
        )
    if teacher.label_map is not None and teacher.label_map != label_map:
        return (
            "its class indices stand for other images than the student's (label map "
            f"{teacher.label_map} vs {label_map}: other data, or another validation carve-out)"
        )
    if teacher.config.model.classifier != student.model.classifier:
        return (
            f"its classifier is {_classifier_text(teacher.config)} and the student's "
            f"{_classifier_text(student)}"
        )
    heads_t, heads_s = _head_count(teacher.config), _head_count(student)
    if heads_t != heads_s:
        return f"it has {heads_t} classifier heads and the student {heads_s}"
    return None


def check_teacher_fits(
    teacher: Teacher, student: ReidConfig, *, num_classes: int, label_map: str
) -> None:
    """Refuse, in one sentence naming what differs, a teacher that cannot teach `student`.

    Both see the same augmented batch, so the training input size must agree. The logit term
    (when on) compares scores class by class: same class count, the same images behind each
    class index (`label_map`: `data.splits.label_map_digest` of the student's training split),
    the same classifier family and number of heads. PKT alone needs none of these.
    """
    size_t, size_s = teacher.config.input.size_train, student.input.size_train
    if size_t != size_s:
        raise ReidError(
            f"teacher {teacher.name} was trained on {size_t[0]}×{size_t[1]} inputs and the "
            f"student's input.size_train is {size_s[0]}×{size_s[1]}; they must see the same batch"
        )
    if not student.distillation.logit.active:
        return
    if teacher.label_map is None:
        logger.warning(
            "teacher %s's model file records no label map (written before label maps were "
            "recorded, or imported): only its class count is checked against the student's",
            teacher.name,
        )
    mismatch = _logit_mismatch(teacher, student, num_classes, label_map)
    if mismatch is not None:
        raise ReidError(
            f"the logit term cannot use teacher {teacher.name}: {mismatch}; make them agree "
            "or set distillation.logit.kind=none to distil with PKT alone"
        )


def check_student_init(init: ReidConfig, student: ReidConfig, *, name: str) -> None:
    """Refuse a student-init model file (config `init`, named `name`) of another architecture
    than `student`'s (where the ImageNet weights came from does not count)."""
    if without_pretrained(init.model) != without_pretrained(student.model):
        raise ReidError(
            f"distillation.student_init_run_id: the model of {name} differs from the student's "
            "model section; start from a run of the same architecture"
        )


def load_student_init(model: nn.Module, path: Path, *, name: str, student: ReidConfig) -> None:
    """Start `model` (the student, built from `student`) from the weights of the model file at
    `path`: its model section must equal the student's; the classifier is kept only when its
    shape fits (another class count starts it afresh, said once)."""
    loaded = load_model_file(path)
    check_student_init(loaded.config, student, name=name)
    target = model.state_dict()
    state = {k: v for k, v in loaded.model.state_dict().items() if k in target}
    skipped = [k for k, v in state.items() if v.shape != target[k].shape]
    for key in skipped:
        del state[key]
    model.load_state_dict(state, strict=not skipped)
    if skipped:
        logger.info(
            "student starts from %s except its classifier (%d classes there, %d here)",
            name,
            loaded.num_classes,
            target[skipped[0]].shape[0],
        )
    else:
        logger.info("student starts from the weights of %s", name)


@dataclass(frozen=True, kw_only=True)
class DistillationFiles:
    """Local copies of the model files a distillation config names by MLflow run id (fetched
    by the caller: this stage never talks to MLflow), with the names messages use for them.

    teacher: the teacher's model file (None: `distillation.teacher_weights`, a local path).
    student_init: the model file the student starts from (`distillation.student_init_run_id`).
    """

    teacher: Path | None = None
    teacher_name: str = ""
    student_init: Path | None = None
    student_init_name: str = ""


def teacher_file(config: ReidConfig, files: DistillationFiles) -> tuple[Path, str]:
    """(path, name) of the teacher's model file for `config` (distillation enabled)."""
    distillation = config.distillation
    if files.teacher is not None:
        return files.teacher, files.teacher_name or str(files.teacher)
    if distillation.teacher_weights is not None:
        return Path(distillation.teacher_weights), distillation.teacher_weights
    if distillation.teacher_run_id is not None:
        raise ReidError(
            f"distillation.teacher_run_id names run {distillation.teacher_run_id}, but its model "
            "file was not fetched for this worker; train through reid train, reid search or "
            "reid promote, which fetch it"
        )
    raise no_teacher()


def no_teacher() -> ReidError:
    """The refusal of a distillation config that names no teacher."""
    return ReidError(
        "distillation.enabled needs a teacher: set distillation.teacher_run_id (reid promote "
        "does) or distillation.teacher_weights"
    )


def student_init_file(config: ReidConfig, files: DistillationFiles) -> tuple[Path, str] | None:
    """(path, name) of the model file the student starts from, or None."""
    if files.student_init is not None:
        return files.student_init, files.student_init_name or str(files.student_init)
    run_id = config.distillation.student_init_run_id
    if run_id is not None:
        raise ReidError(
            f"distillation.student_init_run_id names run {run_id}, but its model file was not "
            "fetched for this worker; train through reid train, reid search or reid promote"
        )
    return None
