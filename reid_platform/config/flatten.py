"""Views of a resolved config: YAML text, flat dotted params (MLflow), and a content hash."""

import hashlib
import json
from typing import Any

import yaml

from reid_platform.config.base import Section, VariantSection
from reid_platform.config.schema import ReidConfig


def active_dump(section: Section) -> dict[str, Any]:
    """Plain data of `section` without the parameter blocks of unselected variants.

    Loading the result gives back an equal config, since a dropped block only held values that
    nothing reads (and the defaults refill it).
    """
    inactive: set[str] = set()
    if isinstance(section, VariantSection):
        inactive = set(section.variant_blocks) - {section.active_variant()}
    out: dict[str, Any] = {}
    for name in type(section).model_fields:
        if name in inactive:
            continue
        value = getattr(section, name)
        if isinstance(value, Section):
            out[name] = active_dump(value)
        elif isinstance(value, tuple) and value and isinstance(value[0], Section):
            out[name] = [active_dump(item) for item in value]
        else:
            out[name] = section.model_dump(mode="json", include={name})[name]
    return out


def to_yaml(config: ReidConfig) -> str:
    """The resolved config as YAML (active variant blocks only) that `load_config` reads back."""
    return yaml.safe_dump(active_dump(config), sort_keys=False)


def _flat_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _walk(node: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            _walk(value, f"{prefix}{name}.", out)
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for index, item in enumerate(node):
            _walk(item, f"{prefix}{index}.", out)
    else:
        out[prefix.removesuffix(".")] = _flat_value(node)


def flatten(config: ReidConfig) -> dict[str, str]:
    """Dotted key → value text for every setting, skipping parameter blocks of unselected variants.

    The keys are the config paths that overrides and search spaces use.
    """
    out: dict[str, str] = {}
    _walk(active_dump(config), "", out)
    return out


def config_hash(config: ReidConfig) -> str:
    """SHA-256 of the canonical JSON of the resolved config (first 16 hex digits)."""
    canonical = json.dumps(active_dump(config), sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
