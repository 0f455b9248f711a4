"""Turns pydantic validation errors into one sentence naming the dotted config key."""

import re
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from reid_platform.config.registry import did_you_mean

_QUOTED = re.compile(r"'([^']*)'")


def dotted(loc: tuple[int | str, ...]) -> str:
    """`("data", "train", 0, "root")` → `data.train.0.root`."""
    return ".".join(str(part) for part in loc)


def _element_model(annotation: Any) -> type[BaseModel] | None:
    """The config section class inside `annotation` (unwrapping tuples and optionals)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (tuple, list, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _element_model(arg)
            if found is not None:
                return found
    return None


def section_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The section class found by walking `loc` from `root`, or None where it leaves the schema."""
    current: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _element_model(field.annotation)
    return current


def config_path_problem(root: type[BaseModel], path: str) -> str | None:
    """None when `path` (dotted, list items by index) names a setting of `root`, else why not."""
    parts = path.split(".")
    parent = section_at(root, tuple(int(p) if p.isdigit() else p for p in parts[:-1]))
    if parent is None:
        return f"`{path}` is not a config path"
    if parts[-1] not in parent.model_fields:
        valid = list(parent.model_fields)
        return f"`{path}` is not a config path{did_you_mean(parts[-1], valid)}"
    return None


def _describe(error: Any, root: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    path = dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = section_at(root, loc[:-1])
        valid = list(parent.model_fields) if parent is not None else []
        return f"config key `{path}` is unknown{did_you_mean(str(loc[-1]), valid)}"
    if kind == "missing":
        return f"config key `{path}` is required but missing"
    if kind == "union_tag_invalid":
        context = error.get("ctx", {})
        choices = _QUOTED.findall(str(context.get("expected_tags", "")))
        given = str(context.get("tag"))
        return f"config key `{path}` has no type {given!r}{did_you_mean(given, choices)}"
    if kind == "literal_error":
        choices = _QUOTED.findall(str(error.get("ctx", {}).get("expected", "")))
        given = str(error.get("input"))
        return f"config key `{path}` has no choice {given!r}{did_you_mean(given, choices)}"
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        return f"config key `{path}` is invalid: {message}" if path else f"config: {message}"
    message = message[0].lower() + message[1:]
    where = f"config key `{path}`" if path else "the config"
    return f"{where}: {message}, got {error.get('input')!r}"


def describe_validation_error(error: ValidationError, root: type[BaseModel]) -> str:
    """One sentence for the first problem, with how many more there are."""
    # A bad item also fails its container's own checks (e.g. a too-short list); count those once.
    all_problems = error.errors()
    problems = [
        problem
        for problem in all_problems
        if not any(
            other is not problem
            and tuple(other["loc"])[: len(problem["loc"])] == tuple(problem["loc"])
            and len(other["loc"]) > len(problem["loc"])
            for other in all_problems
        )
    ]
    sentence = _describe(problems[0], root)
    if len(problems) > 1:
        sentence += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return sentence
