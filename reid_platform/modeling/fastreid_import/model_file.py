"""Our model file (`model.pt`): weights, the resolved config and where they came from.

    {"model": state_dict, "config": resolved config YAML text, "num_classes": int,
     "source": {"format": "fastreid", "path": ..., "layout": ..., ...}}

Only tensors, strings, numbers, lists and dicts, so `torch.load(weights_only=True)` reads it.
`num_classes == 0` marks an inference-only model: the state dict then has no classifier weights.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from reid_platform.config import ReidConfig, to_yaml
from reid_platform.config.loading import validate_mapping
from reid_platform.errors import ReidError
from reid_platform.modeling.build import build_model
from reid_platform.modeling.fastreid_import.convert import ImportReport
from reid_platform.modeling.fastreid_import.key_map import CLASSIFIER_SUFFIX

MODEL_FILE_KEYS = ("model", "config", "num_classes", "source")


@dataclass(frozen=True)
class LoadedModel:
    """A model rebuilt from a model file (eval mode), with its config and provenance."""

    model: nn.Module
    config: ReidConfig
    num_classes: int
    source: dict[str, Any]


def _weights_to_save(report: ImportReport) -> dict[str, Tensor]:
    state = report.model.state_dict()
    if report.num_classes == 0:
        return {k: v for k, v in state.items() if not k.endswith(CLASSIFIER_SUFFIX)}
    return state


def save_imported_model(report: ImportReport, out: Path) -> Path:
    """Write `report`'s model to `out` in our model-file format; returns `out`."""
    accounting = report.accounting
    payload: dict[str, Any] = {
        "model": _weights_to_save(report),
        "config": to_yaml(report.config),
        "num_classes": report.num_classes,
        "source": {
            "format": "fastreid",
            "path": report.source,
            "layout": report.layout.value,
            "architecture": report.architecture.value,
            "placed_keys": len(accounting.placed),
            "validated_keys": list(accounting.validated),
            "notes": list(report.notes),
            "other_entries": list(report.other_entries),
        },
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    return out


def load_model_file(path: Path) -> LoadedModel:
    """Rebuild the model saved by `save_imported_model` (strict: every key must fit)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ReidError(f"model file {path} cannot be read safely ({reason})") from None
    if not isinstance(payload, dict) or any(key not in payload for key in MODEL_FILE_KEYS):
        raise ReidError(f"model file {path} lacks one of the entries {', '.join(MODEL_FILE_KEYS)}")
    config = validate_mapping(yaml.safe_load(payload["config"]), source=f"{path} config")
    num_classes = int(payload["num_classes"])
    model = build_model(config.model, config.input, num_classes=max(num_classes, 1))
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
