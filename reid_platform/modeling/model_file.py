"""Our model file (`model.pt`): weights, the resolved config and where they came from.

    {"model": state_dict, "config": resolved config YAML text, "num_classes": int,
     "source": {"format": "fastreid" | "train" | ..., ...}}

Only tensors, strings, numbers, lists and dicts, so `torch.load(weights_only=True)` reads it.
`num_classes == 0` marks an inference-only model: the state dict then has no classifier weights.
Written by `reid import-fastreid` and by training; read by evaluation and export.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from reid_platform.config import ReidConfig, to_yaml
from reid_platform.config.loading import validate_mapping
from reid_platform.config.model import ModelConfig, PretrainedConfig
from reid_platform.errors import ReidError
from reid_platform.modeling.backbones import pretrained
from reid_platform.modeling.build import build_model

MODEL_FILE_KEYS = ("model", "config", "num_classes", "source")

CLASSIFIER_SUFFIX = "classifier.weight"
"""Our classifier keys end with this (`head.classifier.weight`, `b1_head.classifier.weight`)."""


@dataclass(frozen=True)
class LoadedModel:
    """A model rebuilt from a model file (eval mode), with its config and provenance."""

    model: nn.Module
    config: ReidConfig
    num_classes: int
    source: dict[str, Any]


def save_model_file(
    model: nn.Module, *, config: ReidConfig, num_classes: int, source: dict[str, Any], out: Path
) -> Path:
    """Write `model` in our model-file format to `out` (classifier dropped when num_classes=0)."""
    state = model.state_dict()
    if num_classes == 0:
        state = {k: v for k, v in state.items() if not k.endswith(CLASSIFIER_SUFFIX)}
    payload: dict[str, Any] = {
        "model": state,
        "config": to_yaml(config),
        "num_classes": num_classes,
        "source": source,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    return out


def _read_payload(path: Path) -> tuple[dict[str, Any], ReidConfig]:
    """The model file's entries (weights-only load) and its validated config."""
    if not Path(path).is_file():
        raise ReidError(f"model file {path} does not exist")
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ReidError(f"model file {path} cannot be read safely ({reason})") from None
    if not isinstance(payload, dict) or any(key not in payload for key in MODEL_FILE_KEYS):
        raise ReidError(f"model file {path} lacks one of the entries {', '.join(MODEL_FILE_KEYS)}")
    config = validate_mapping(yaml.safe_load(payload["config"]), source=f"{path} config")
    return payload, config


def read_model_config(path: Path) -> ReidConfig:
    """The resolved config a model file records, without building its model."""
    return _read_payload(path)[1]


def load_model_file(path: Path) -> LoadedModel:
    """Rebuild the model saved by `save_model_file` (strict: every key must fit)."""
    payload, config = _read_payload(path)
    num_classes = int(payload["num_classes"])
    with _pretrained_notices_off():
        # Every weight comes from the file: the ImageNet file its config names need not exist
        # on this machine, and "random initialisation" would be a false notice.
        model = build_model(
            without_pretrained(config.model), config.input, num_classes=max(num_classes, 1)
        )
    result = model.load_state_dict(payload["model"], strict=False)
    allowed = (
        {k for k in model.state_dict() if k.endswith(CLASSIFIER_SUFFIX)}
        if not num_classes
        else set()
    )
    if result.unexpected_keys or set(result.missing_keys) - allowed:
        unfit = [*result.unexpected_keys, *sorted(set(result.missing_keys) - allowed)]
        raise ReidError(
            f"model file {path} does not fit its own config (keys {', '.join(unfit[:3])})"
        )
    return LoadedModel(model.eval(), config, num_classes, dict(payload["source"]))


def without_pretrained(model: ModelConfig) -> ModelConfig:
    """`model` without where its ImageNet weights came from: the architecture alone (two model
    files of equal `without_pretrained` configs hold the same tensors)."""
    backbone = model.backbone.model_copy(update={"pretrained": PretrainedConfig()})
    return model.model_copy(update={"backbone": backbone})


@contextmanager
def _pretrained_notices_off() -> Iterator[None]:
    notices = logging.getLogger(pretrained.__name__)
    level = notices.level
    notices.setLevel(logging.WARNING)
    try:
        yield
    finally:
        notices.setLevel(level)
