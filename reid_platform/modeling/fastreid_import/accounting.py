"""Strict key accounting: every FastReID tensor placed or listed, every model key filled or listed.

Unlike `load_state_dict(strict=False)` (FastReID's own loader, which drops mismatched shapes
with a warning), nothing is skipped silently here: shape mismatches are listed for the caller to
refuse, two tensors aimed at one key are an error, and the caller decides whether what is left
over may be refused.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import Tensor

from reid_platform.errors import ReidError
from reid_platform.modeling.fastreid_import.key_map import MappedKey
from reid_platform.modeling.fastreid_import.layouts import PIXEL_KEYS
from reid_platform.modeling.model_file import CLASSIFIER_SUFFIX

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PlacedKey:
    """FastReID `source` loaded into our `target`, a tensor of `shape` (ours)."""

    source: str
    target: str
    shape: Shape


@dataclass(frozen=True, slots=True)
class UnplacedKey:
    """A FastReID tensor with nowhere to go, and why."""

    source: str
    shape: Shape
    reason: str


@dataclass(frozen=True, slots=True)
class MismatchedKey:
    """A FastReID tensor of `shape` aimed at our `target`, which has shape `expected`."""

    source: str
    target: str
    shape: Shape
    expected: Shape


@dataclass(frozen=True)
class KeyAccounting:
    """The outcome of matching a FastReID state dict against our model's state dict.

    tensors: our key → tensor to load (reshaped where a 1×1 conv fills a linear weight).
    validated: FastReID keys that are checked rather than loaded (`pixel_mean`, `pixel_std`).
    missing: our keys that no FastReID tensor aims at (mismatched targets are listed there).
    """

    placed: tuple[PlacedKey, ...]
    unplaced: tuple[UnplacedKey, ...]
    mismatched: tuple[MismatchedKey, ...]
    validated: tuple[str, ...]
    missing: tuple[str, ...]
    tensors: dict[str, Tensor] = field(repr=False)

    @property
    def missing_classifier(self) -> tuple[str, ...]:
        """Missing keys that are classifier weights (not needed for embeddings)."""
        return tuple(key for key in self.missing if key.endswith(CLASSIFIER_SUFFIX))

    @property
    def complete(self) -> bool:
        """Nothing unplaced, mismatched or missing."""
        return not self.unplaced and not self.mismatched and not self.missing

    @property
    def complete_but_classifier(self) -> bool:
        """Nothing unplaced or mismatched; the only missing keys are the classifier weights."""
        return not self.unplaced and not self.mismatched and self.missing == self.missing_classifier


def _shape(tensor: Tensor) -> Shape:
    return tuple(int(size) for size in tensor.shape)


def _fit(tensor: Tensor, mapped: MappedKey) -> Tensor:
    """A 1×1 conv weight (D, C, 1, 1) flattened to the linear weight (D, C) it fills."""
    if mapped.from_conv1x1 and tensor.dim() == 4 and _shape(tensor)[2:] == (1, 1):
        return tensor.flatten(1)
    return tensor


def account_keys(
    state: Mapping[str, Tensor],
    mapping: Mapping[str, MappedKey | None],
    model_state: Mapping[str, Tensor],
) -> KeyAccounting:
    """Match every FastReID key of `state` (routed by `mapping`) with `model_state`."""
    placed: list[PlacedKey] = []
    unplaced: list[UnplacedKey] = []
    mismatched: list[MismatchedKey] = []
    validated: list[str] = []
    tensors: dict[str, Tensor] = {}
    filled_by: dict[str, str] = {}
    for source, tensor in state.items():
        mapped = mapping.get(source)
        if mapped is None:
            if source in PIXEL_KEYS:
                validated.append(source)
            else:
                unplaced.append(UnplacedKey(source, _shape(tensor), "no FastReID rule names it"))
            continue
        if mapped.target not in model_state:
            reason = f"our model has no {mapped.target!r}"
            unplaced.append(UnplacedKey(source, _shape(tensor), reason))
            continue
        if mapped.target in filled_by:
            raise ReidError(
                f"FastReID keys {filled_by[mapped.target]!r} and {source!r} both map to our "
                f"{mapped.target!r}; the checkpoint mixes two key layouts"
            )
        filled_by[mapped.target] = source
        fitted = _fit(tensor, mapped)
        expected = _shape(model_state[mapped.target])
        if _shape(fitted) != expected:
            mismatched.append(MismatchedKey(source, mapped.target, _shape(fitted), expected))
            continue
        tensors[mapped.target] = fitted
        placed.append(PlacedKey(source, mapped.target, _shape(fitted)))
    missing = tuple(key for key in model_state if key not in filled_by)
    return KeyAccounting(
        placed=tuple(placed),
        unplaced=tuple(unplaced),
        mismatched=tuple(mismatched),
        validated=tuple(validated),
        missing=missing,
        tensors=tensors,
    )


def _first(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ..." if len(names) > limit else shown


def refusal_sentence(accounting: KeyAccounting, source: str) -> str:
    """One sentence naming the first shape mismatch, or the counts and the first unplaced and
    missing keys."""
    if accounting.mismatched:
        first, more = accounting.mismatched[0], len(accounting.mismatched) - 1
        also = f" (and {more} more shape mismatch{'es' if more > 1 else ''})" if more else ""
        return (
            f"refusing {source}: FastReID key {first.source!r} has shape {first.shape} but our "
            f"{first.target!r} has shape {first.expected}{also}, so the config does not describe "
            "this checkpoint's model"
        )
    parts: list[str] = []
    if accounting.unplaced:
        count = len(accounting.unplaced)
        names = [key.source for key in accounting.unplaced]
        keys = "1 FastReID key has" if count == 1 else f"{count} FastReID keys have"
        parts.append(f"{keys} no place ({_first(names)})")
    if accounting.missing:
        count = len(accounting.missing)
        keys = "1 model key" if count == 1 else f"{count} model keys"
        parts.append(f"{keys} got no weights ({_first(list(accounting.missing))})")
    return f"refusing a partial load of {source}: {' and '.join(parts)}"
