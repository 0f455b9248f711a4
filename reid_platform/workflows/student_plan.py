"""The student's config for a promotion: its own model, solver and losses, the teacher's data.

The student trains on exactly the teacher's identities, validation carve-out and label order
(`data.train`, `data.test`, `data.validation`), at the teacher's input size (both see the same
augmented batch), and, when the logit term is on, with the teacher's classifier block (kind,
scale, margin: class scores are compared index by index). Everything else stays the student's:
backbone, pooling, neck, embedding size, sampler and loader, solver, losses, export.
"""

from dataclasses import dataclass
from typing import Any

from reid_platform.config import ReidConfig
from reid_platform.config.flatten import active_dump
from reid_platform.config.loading import validate_mapping

TAKEN_FROM_TEACHER = (
    "data.train",
    "data.test",
    "data.validation",
    "input.size_train",
    "input.size_test",
)
CLASSIFIER = "model.classifier"


@dataclass(frozen=True)
class StudentPlan:
    """The resolved student config and one line per setting taken from the teacher."""

    config: ReidConfig
    taken: tuple[str, ...]


def _get(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        node = node[part]
    return node


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value


def _text(path: str, value: Any) -> str:
    """A short rendering of a taken value for the one-line report."""
    if path in ("data.train", "data.test"):
        return ", ".join(f"{entry['name']} at {entry['root']}" for entry in value)
    if path.startswith("input.size"):
        return f"{value[0]}×{value[1]}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, dict))
    return str(value)


def plan_student(student: ReidConfig, teacher: ReidConfig, *, teacher_run_id: str) -> StudentPlan:
    """`student` with the teacher's data and input size (and classifier, for the logit term),
    distillation on, taught by run `teacher_run_id`."""
    raw, source = active_dump(student), active_dump(teacher)
    paths = [*TAKEN_FROM_TEACHER]
    if student.distillation.logit.active:
        paths.append(CLASSIFIER)
    taken = []
    for path in paths:
        mine, theirs = _get(raw, path), _get(source, path)
        _set(raw, path, theirs)
        change = "same as the student config" if mine == theirs else f"was {_text(path, mine)}"
        taken.append(f"{path} from the teacher: {_text(path, theirs)} ({change})")
    raw["distillation"] |= {
        "enabled": True,
        "teacher_run_id": teacher_run_id,
        "teacher_weights": None,
    }
    return StudentPlan(validate_mapping(raw, source="the student config"), tuple(taken))
