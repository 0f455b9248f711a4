"""Typed, strict experiment configuration shared by the CLI, tests and Tune trials."""

from reid_platform.config.flatten import config_hash, flatten, to_yaml
from reid_platform.config.loading import apply_override, config_from_mapping, load_config
from reid_platform.config.schema import ReidConfig

__all__ = [
    "ReidConfig",
    "apply_override",
    "config_from_mapping",
    "config_hash",
    "flatten",
    "load_config",
    "to_yaml",
]
