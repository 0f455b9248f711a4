"""Loading a config: YAML (safe_load) with one `base:` level, dotted overrides, strict validation.

The same `load_config` serves the CLI, tests and Tune trials, so an override such as
`solver.optimizer.base_lr=3.5e-4` means the same thing everywhere.
"""

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from reid_platform.config.base import Section
from reid_platform.config.errors import describe_validation_error
from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ConfigError

BASE_KEY = "base"
SectionT = TypeVar("SectionT", bound=Section)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping at the top of a YAML file; a clear error for a missing or malformed file."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of keys, not {type(loaded).__name__}"
        )
    return loaded


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in `update` replaces the base value."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw mapping of a config file with its `base:` file merged underneath (one level)."""
    raw = read_yaml_mapping(path)
    base_name = raw.pop(BASE_KEY, None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise ConfigError(f"config file {path}: `base` must be a file path, got {base_name!r}")
    base_path = (path.parent / base_name).resolve()
    base = read_yaml_mapping(base_path)
    if BASE_KEY in base:
        raise ConfigError(f"config file {base_path} is a base and may not name a base of its own")
    return merge(base, raw)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`"a.b.c=value"` → (["a", "b", "c"], value parsed as a YAML scalar or list)."""
    key, sep, value_text = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {text!r} must look like dotted.key=value")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError:
        value = value_text
    return parts, value


def apply_override(raw: dict[str, Any], text: str) -> dict[str, Any]:
    """A copy of `raw` with one `dotted.key=value` override applied (list items by index)."""
    parts, value = parse_override(text)
    updated = copy.deepcopy(raw)
    node: Any = updated
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"override {text!r}: `{where}` is not an item of a {len(node)}-item list"
                )
            index = int(part)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            parent = ".".join(parts[:depth])
            raise ConfigError(f"override {text!r}: `{parent}` is a value, not a section")
    return updated


def validate_section(section: type[SectionT], raw: Mapping[str, Any], source: str) -> SectionT:
    """Strictly validate a raw mapping into a frozen config section (errors name the dotted key).

    Validation runs on the JSON form of the mapping so that strict mode accepts YAML lists for
    tuple fields while still refusing `"3"` for an int or `1` for a bool.
    """
    try:
        document = json.dumps(raw)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: holds a value that is not plain data ({error})") from None
    try:
        return section.model_validate_json(document, strict=True)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_validation_error(error, section)}") from None


def validate_mapping(raw: Mapping[str, Any], source: str = "config") -> ReidConfig:
    """Strictly validate a raw mapping into a frozen `ReidConfig`."""
    return validate_section(ReidConfig, raw, source)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ReidConfig:
    """Read `path` (with its base), apply `overrides` in order and validate the result."""
    raw = read_config_file(Path(path))
    for override in overrides:
        raw = apply_override(raw, override)
    return validate_mapping(raw, source=str(path))


def config_from_mapping(raw: Mapping[str, Any], overrides: Sequence[str] = ()) -> ReidConfig:
    """As `load_config`, from an in-memory mapping (tests, Tune trials)."""
    updated = dict(raw)
    for override in overrides:
        updated = apply_override(updated, override)
    return validate_mapping(updated)
