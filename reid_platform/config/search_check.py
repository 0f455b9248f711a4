"""Checks a search space against the experiment config it searches, before any trial starts.

Every value a trial can be given (each choice, both bounds of a numeric range, every fixed
setting, every seed point) is applied to the base config and validated, and every `when`
condition must be satisfiable, so a bad space fails at once with a sentence naming the key.
"""

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from reid_platform.config.errors import describe_validation_error, dotted
from reid_platform.config.schema import ReidConfig
from reid_platform.config.search import (
    ChoiceDistribution,
    Distribution,
    IntDistribution,
    QuantizedDistribution,
    SearchSpaceConfig,
    choice_matches,
    contains,
)
from reid_platform.errors import ConfigError
from reid_platform.metric_names import EVAL_PREFIX, EXPORT_PREFIX


class RejectedSettingsError(ConfigError):
    """Dotted settings applied to a config do not validate; `path` is the first bad config key."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _set_dotted(raw: dict[str, Any], path: str, value: Any) -> None:
    node: Any = raw
    parts = path.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            if last:
                node[int(part)] = value
            node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            node = node.setdefault(part, {})
        else:
            where = ".".join(parts[:depth]) or "the config"
            raise RejectedSettingsError(f"`{where}` has no item `{part}`", path)


def apply_settings(base: ReidConfig, settings: Mapping[str, Any]) -> ReidConfig:
    """`base` with each dotted path in `settings` set to its value, validated strictly.

    Raises `RejectedSettingsError` (a ConfigError naming the config key) when the result is invalid.
    """
    raw = base.model_dump(mode="json")
    for path, value in settings.items():
        _set_dotted(raw, path, value)
    try:
        return ReidConfig.model_validate_json(json.dumps(raw), strict=True)
    except ValidationError as error:
        path = dotted(tuple(error.errors()[0]["loc"]))
        raise RejectedSettingsError(describe_validation_error(error, ReidConfig), path) from None
    except (TypeError, ValueError) as error:  # json.dumps: a value that is not plain data
        raise RejectedSettingsError(f"a value is not plain data ({error})", "") from None


def culprit(keys: Mapping[str, Any], path: str) -> str | None:
    """The settings key that the failing config `path` points at (same key, inside or above it)."""
    for key in keys:
        if not path or key == path or key.startswith(f"{path}.") or path.startswith(f"{key}."):
            return key
    return None


def condition_holds(distribution: Distribution, values: Mapping[str, Any]) -> bool:
    """Whether each parameter named by `distribution.when` took one of its listed values."""
    return all(
        name in values and choice_matches(values[name], allowed)
        for name, allowed in distribution.when.items()
    )


def condition_order(space: SearchSpaceConfig) -> list[str]:
    """Searched keys with every condition before the parameters it gates (file order otherwise).

    A cycle of conditions raises a ConfigError naming a key on it.
    """
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(key: str, trail: tuple[str, ...]) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "open":
            loop = " → ".join((*trail[trail.index(key) :], key))
            raise ConfigError(
                f"search parameter {key}: impossible condition, its `when` depends on itself "
                f"({loop})"
            )
        state[key] = "open"
        for condition in space.params[key].when:
            visit(condition, (*trail, key))
        state[key] = "done"
        order.append(key)

    for key in space.params:
        visit(key, ())
    return order


def _ancestors(space: SearchSpaceConfig, key: str, order: list[str]) -> list[str]:
    found: set[str] = set()
    pending = list(space.params[key].when)
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(space.params[name].when)
    return [name for name in order if name in found]


def witness(space: SearchSpaceConfig, key: str, order: list[str]) -> dict[str, Any] | None:
    """Choices of `key`'s condition parameters under which `key` exists, or None if none do.

    Searches the (small) product of the ancestors' choices in condition order: each ancestor
    must itself exist, and take a value every parameter conditioned on it accepts.
    """
    ancestors = _ancestors(space, key, order)
    gated = [key, *ancestors]

    def assign(index: int, chosen: dict[str, Any]) -> dict[str, Any] | None:
        if index == len(ancestors):
            return chosen if condition_holds(space.params[key], chosen) else None
        name = ancestors[index]
        distribution = space.params[name]
        if not isinstance(distribution, ChoiceDistribution):
            return None
        if not condition_holds(distribution, chosen):
            return None
        for value in distribution.values:
            wanted = (space.params[other].when.get(name) for other in gated)
            if all(allowed is None or choice_matches(value, allowed) for allowed in wanted):
                found = assign(index + 1, {**chosen, name: value})
                if found is not None:
                    return found
        return None

    return assign(0, {})


def _check_conditions(space: SearchSpaceConfig, order: list[str]) -> None:
    for key in order:
        for name, allowed in space.params[key].when.items():
            condition = space.params[name]
            if not isinstance(condition, ChoiceDistribution):
                raise ConfigError(
                    f"search parameter {key}: impossible condition, `when` names {name}, a "
                    f"{condition.type} parameter (conditions may only name choice parameters)"
                )
            for value in allowed:
                if not choice_matches(value, condition.values):
                    raise ConfigError(
                        f"search parameter {key}: impossible condition, {name} can never be "
                        f"{value!r} (its choices: {', '.join(map(repr, condition.values))})"
                    )
        if witness(space, key, order) is None:
            raise ConfigError(
                f"search parameter {key}: impossible condition, no choice of "
                f"{', '.join(_ancestors(space, key, order))} makes its `when` hold"
            )


def _trial_values(distribution: Distribution) -> Iterator[tuple[str, Any]]:
    """The values of a distribution worth validating: every choice, or both bounds."""
    if isinstance(distribution, ChoiceDistribution):
        for value in distribution.values:
            yield "choice", value
    else:
        yield "low", distribution.low
        yield "high", distribution.high


def _check_values(space: SearchSpaceConfig, base: ReidConfig, order: list[str]) -> None:
    for key in order:
        distribution = space.params[key]
        conditions = witness(space, key, order) or {}
        for role, value in _trial_values(distribution):
            try:
                apply_settings(base, {**conditions, key: value})
            except RejectedSettingsError as error:
                raise ConfigError(
                    f"search parameter {key}: {role} {value!r} is not accepted by the config "
                    f"({error})"
                ) from None


def _check_fixed(space: SearchSpaceConfig, base: ReidConfig) -> ReidConfig:
    try:
        return apply_settings(base, space.fixed)
    except RejectedSettingsError as error:
        key = culprit(space.fixed, error.path)
        if key is None:
            raise ConfigError(f"fixed settings are not accepted by the config ({error})") from None
        raise ConfigError(
            f"fixed setting {key}={space.fixed[key]!r} is not accepted by the config ({error})"
        ) from None


def describe_distribution(distribution: Distribution) -> str:
    """`choices 'a', 'b'` or `[low, high] step s`, for messages."""
    if isinstance(distribution, ChoiceDistribution):
        return "choices " + ", ".join(map(repr, distribution.values))
    text = f"{distribution.type} [{distribution.low}, {distribution.high}]"
    if isinstance(distribution, IntDistribution) and distribution.step != 1:
        text += f" step {distribution.step}"
    if isinstance(distribution, QuantizedDistribution):
        text += f" step {distribution.q}"
    return text


def _check_seed_point(
    space: SearchSpaceConfig, base: ReidConfig, number: int, point: Mapping[str, Any]
) -> None:
    where = f"seed point {number}"
    for key, value in point.items():
        if key not in space.params:
            raise ConfigError(f"{where} names {key}, which is not a searched parameter")
        distribution = space.params[key]
        if not contains(distribution, value):
            raise ConfigError(
                f"{where}: {key}={value!r} is outside its distribution "
                f"({describe_distribution(distribution)})"
            )
        for name, allowed in distribution.when.items():
            if name not in point or not choice_matches(point[name], allowed):
                raise ConfigError(
                    f"{where} sets {key}, but its condition {name} in "
                    f"[{', '.join(map(repr, allowed))}] does not hold in that point"
                )
    try:
        apply_settings(base, point)
    except RejectedSettingsError as error:
        bad = culprit(point, error.path)
        named = f" ({bad}={point[bad]!r})" if bad is not None else ""
        raise ConfigError(f"{where}{named} is not accepted by the config ({error})") from None


UNSEARCHABLE = {
    "solver.max_epochs": "ASHA's max_t",
    "distributed.num_workers": "the CPUs Ray reserves",
    "distributed.cpus_per_worker": "the CPUs Ray reserves",
}
"""Settings the search driver reads once from base + fixed (not per trial), and what for."""


def _check_searchable(space: SearchSpaceConfig) -> None:
    for key in space.params:
        if key in UNSEARCHABLE:
            raise ConfigError(
                f"search parameter {key} cannot be searched ({UNSEARCHABLE[key]} comes from the "
                "base config and `fixed`, the same for every trial); set it under `fixed`"
            )


def _check_validation_split(space: SearchSpaceConfig, trial_base: ReidConfig) -> None:
    # eval/* is only measured on the validation split: without one no trial reports it, and
    # Tune would drop every trial.
    if trial_base.data.validation.enabled:
        return
    for objective in space.objectives:
        if objective.metric.startswith(EVAL_PREFIX):
            raise ConfigError(
                f"objective {objective.metric} needs a validation split, but data.validation "
                "sets neither num_ids nor fraction (set one in the config or under `fixed`)"
            )


def _check_export_formats(space: SearchSpaceConfig, trial_base: ReidConfig) -> None:
    # export/* comes from the model a trial exports when it finishes; with no format to export
    # no trial would report it.
    if trial_base.export.formats or "export.formats" in space.params:
        return
    for objective in space.objectives:
        if objective.metric.startswith(EXPORT_PREFIX):
            raise ConfigError(
                f"objective {objective.metric} is measured on the exported model, but "
                "export.formats is empty (list onnx in the config or under `fixed`)"
            )


def check_search_space(space: SearchSpaceConfig, base: ReidConfig) -> None:
    """Raise a ConfigError naming the key if any trial of `space` could not configure `base`.

    Checks, in order: settings that cannot be searched, conditions (cycles, values a condition
    can never take, non-choice conditions, unsatisfiable chains), the fixed settings, a
    validation split for eval/* objectives, an export format for export/* objectives, every
    choice and both bounds of every range (with the parameter's conditions made true), then
    each seed point.
    """
    _check_searchable(space)
    order = condition_order(space)
    _check_conditions(space, order)
    trial_base = _check_fixed(space, base)
    _check_validation_split(space, trial_base)
    _check_export_formats(space, trial_base)
    _check_values(space, trial_base, order)
    for number, point in enumerate(space.seed_points, start=1):
        _check_seed_point(space, trial_base, number, point)
