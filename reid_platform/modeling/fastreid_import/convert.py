"""FastReID checkpoint → our model, with strict key accounting and no silent partial load.

`import_fastreid_checkpoint(path, config)` reads the file (`weights_only=True`), tells the key
layout and architecture apart, checks saved pixel buffers against the config's normalisation,
adjusts the config to FastReID's behaviour (`fidelity.py`), builds our model with as many
classes as the checkpoint's classifier, places every tensor and refuses the load unless every
FastReID key was placed and every model key filled. The one allowed gap is a checkpoint with no
classifier weights at all: the model is then for inference only (`num_classes == 0`).

The imported model computes FastReID's eval embedding from 0-255 RGB input resized (bicubic) to
`config.input.size_test`: `(x − mean) / std` with ImageNet mean/std × 255, the backbone, the
pooling and the BNNeck (post-neck feature; for MGN the 8 head features in FastReID's order).
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from reid_platform.config import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.modeling.baseline import ReidBaselineModel
from reid_platform.modeling.build import build_model
from reid_platform.modeling.fastreid_import.accounting import (
    KeyAccounting,
    account_keys,
    refusal_sentence,
)
from reid_platform.modeling.fastreid_import.fidelity import reference_config
from reid_platform.modeling.fastreid_import.hints import suggested_overrides
from reid_platform.modeling.fastreid_import.key_map import MappedKey, map_fastreid_keys
from reid_platform.modeling.fastreid_import.layouts import (
    Architecture,
    CheckpointLayout,
    FastReIDCheckpoint,
    detect_architecture,
    detect_layout,
    read_fastreid_checkpoint,
    strip_module_prefix,
)
from reid_platform.modeling.mgn import MultipleGranularityNetwork
from reid_platform.modeling.model_file import CLASSIFIER_SUFFIX

logger = logging.getLogger(__name__)

ReidModel = ReidBaselineModel | MultipleGranularityNetwork

PIXEL_TOLERANCE = 1e-3
"""Largest difference (0-255 scale) between a saved pixel buffer and the config's mean/std."""


class PartialLoadError(ReidError):
    """A partial load was refused; `accounting` lists what was placed, unplaced, mismatched in
    shape and missing."""

    def __init__(self, message: str, accounting: KeyAccounting) -> None:
        super().__init__(message)
        self.accounting = accounting


@dataclass(frozen=True)
class ImportReport:
    """A successful import.

    model: our model in eval mode, every FastReID tensor loaded.
    config: the config it was built from (the user's, with the notes' adjustments).
    num_classes: rows of the imported classifier; 0 when the checkpoint had none (the model's
        placeholder 1-class classifier is then random and never saved).
    notes: what the importer adjusted or allowed, one sentence each.
    other_entries: top-level entries of the file besides `model` (optimizer, ...), not read.
    """

    source: str
    layout: CheckpointLayout
    architecture: Architecture
    model: ReidModel
    config: ReidConfig
    num_classes: int
    accounting: KeyAccounting
    notes: tuple[str, ...]
    other_entries: tuple[str, ...] = ()


def _check_architecture(architecture: Architecture, config: ReidConfig, source: str) -> None:
    wanted = "mgn" if architecture is Architecture.MGN else "baseline"
    if config.model.kind != wanted:
        raise ReidError(
            f"{source} holds a FastReID {architecture.value} model but the config builds "
            f"model.kind={config.model.kind!r}; set model.kind={wanted}"
        )


def _check_pixel_buffers(state: Mapping[str, Tensor], config: ReidConfig, source: str) -> None:
    """Saved `pixel_mean` / `pixel_std` (0-255 scale) must equal `input.mean` / `input.std`."""
    for key, expected, setting in (
        ("pixel_mean", config.input.mean, "input.mean"),
        ("pixel_std", config.input.std, "input.std"),
    ):
        saved = state.get(key)
        if saved is None:
            continue
        values = [round(float(v), 4) for v in saved.detach().flatten()]
        close = len(values) == len(expected) and all(
            abs(value - want) <= PIXEL_TOLERANCE
            for value, want in zip(values, expected, strict=True)
        )
        if not close:
            raise ReidError(
                f"{source}: {key} is {values} but {setting} is {list(expected)} "
                "(ImageNet × 255 by default), so the model was trained on differently "
                f"normalised input; set {setting} to the checkpoint's values if that is intended"
            )


def _num_classes(
    state: Mapping[str, Tensor], mapping: Mapping[str, MappedKey | None], source: str
) -> int:
    """Rows of the classifier weights (all heads agree), 0 when there are none."""
    sizes = {
        int(state[key].shape[0])
        for key, mapped in mapping.items()
        if mapped is not None and mapped.target.endswith(CLASSIFIER_SUFFIX)
    }
    if len(sizes) > 1:
        raise ReidError(
            f"{source}: the classifier weights disagree on the class count {sorted(sizes)}"
        )
    return sizes.pop() if sizes else 0


def _build(config: ReidConfig, num_classes: int) -> ReidModel:
    """Our model for `config`; a 1-class placeholder classifier when the checkpoint has none."""
    model = build_model(config.model, config.input, num_classes=max(num_classes, 1))
    if not isinstance(model, ReidBaselineModel | MultipleGranularityNetwork):
        raise TypeError(f"build_model returned an unknown model type {type(model).__name__}")
    return model


def _accept(
    accounting: KeyAccounting,
    num_classes: int,
    state: Mapping[str, Tensor],
    config: ReidConfig,
    architecture: Architecture,
    source: str,
) -> tuple[str, ...]:
    """Notes for an acceptable accounting; `PartialLoadError` (with hints) for any other."""
    if accounting.complete:
        return ()
    if num_classes == 0 and accounting.complete_but_classifier:
        return (
            f"no classifier weights in {source}: the model is for inference only "
            f"({len(accounting.missing)} classifier key(s) left out)",
        )
    sentence = refusal_sentence(accounting, source)
    hints = suggested_overrides(state, config, architecture)
    if hints:
        sentence += f"; the checkpoint suggests {' '.join(hints)}"
    raise PartialLoadError(sentence, accounting)


def _load(model: nn.Module, accounting: KeyAccounting, source: str) -> None:
    result = model.load_state_dict(accounting.tensors, strict=False)
    if result.unexpected_keys or sorted(result.missing_keys) != sorted(accounting.missing):
        raise RuntimeError(f"loading {source} did not fill the keys the accounting expected")
    model.eval()


def import_fastreid_state_dict(
    state: Mapping[str, Tensor],
    config: ReidConfig,
    *,
    source: str = "the state dict",
    other_entries: tuple[str, ...] = (),
) -> ImportReport:
    """Import an in-memory FastReID state dict (`module.` prefixes allowed); see the module."""
    state = strip_module_prefix(state)
    architecture = detect_architecture(state)
    _check_architecture(architecture, config, source)
    _check_pixel_buffers(state, config, source)
    mapping = map_fastreid_keys(state, architecture)
    num_classes = _num_classes(state, mapping, source)
    adjusted, notes = reference_config(config, state)
    model = _build(adjusted, num_classes)
    accounting = account_keys(state, mapping, model.state_dict())
    notes += _accept(accounting, num_classes, state, adjusted, architecture, source)
    _load(model, accounting, source)
    layout = detect_layout(state)
    for note in notes:
        logger.info("%s", note)
    logger.info(
        "imported %s (FastReID %s, %s layout): %d keys placed, %d validated",
        source,
        architecture.value,
        layout.value,
        len(accounting.placed),
        len(accounting.validated),
    )
    return ImportReport(
        source=source,
        layout=layout,
        architecture=architecture,
        model=model,
        config=adjusted,
        num_classes=num_classes,
        accounting=accounting,
        notes=notes,
        other_entries=other_entries,
    )


def import_fastreid_checkpoint(checkpoint: Path, config: ReidConfig) -> ImportReport:
    """Import a FastReID `.pth` file (raw state dict or `{"model": ...}`) into our model."""
    read: FastReIDCheckpoint = read_fastreid_checkpoint(Path(checkpoint))
    return import_fastreid_state_dict(
        read.state, config, source=str(checkpoint), other_entries=read.other_entries
    )
