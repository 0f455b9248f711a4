"""Reading FastReID checkpoint files and telling their key layouts apart.

FastReID's state-dict names changed twice (see the reference notes, §4.3):

- `OLD` (v0.1.1, the model-zoo files): `heads.bnneck.*`, `heads.classifier.weight`, and
  persistent `pixel_mean` / `pixel_std` buffers;
- `INTERMEDIATE` (2020-09 → 2021-03): `heads.bottleneck.N.*` + `heads.classifier.weight`, pixel
  buffers still saved;
- `CURRENT` (v1.2+): `heads.bottleneck.N.*` + `heads.weight`, no pixel buffers.

MGN files use the same head names under `b{1,2,3,21,22,31,32,33}_head.` and number their
shared trunk `backbone.{0,1,4,5,6}` instead of naming it.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import torch
from torch import Tensor

from reid_platform.errors import ReidError

PIXEL_KEYS = ("pixel_mean", "pixel_std")
"""Normalisation buffers that FastReID saved until v1.2; validated, never loaded."""

MGN_HEADS = ("b1", "b2", "b3", "b21", "b22", "b31", "b32", "b33")
"""MGN's head names in FastReID (`<name>_head.*`), in the order of its eval embedding."""

_DDP_PREFIX = "module."


class CheckpointLayout(StrEnum):
    """Which generation of FastReID's head and buffer names a state dict uses."""

    OLD = "old"
    INTERMEDIATE = "intermediate"
    CURRENT = "current"


class Architecture(StrEnum):
    """FastReID meta-architecture of a state dict: `Baseline` (one `heads`) or `MGN`."""

    BASELINE = "baseline"
    MGN = "mgn"


@dataclass(frozen=True, slots=True)
class FastReIDCheckpoint:
    """A FastReID state dict as read from disk.

    state: key → tensor, `module.` prefixes stripped.
    other_entries: top-level entries of a `{"model": ...}` file that were not read (optimizer,
        schedulers, epoch, ...), for the report.
    """

    state: dict[str, Tensor]
    other_entries: tuple[str, ...] = ()


def strip_module_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys without DDP's leading `module.`; two keys collapsing into one is an error."""
    stripped: dict[str, Tensor] = {}
    for key, value in state.items():
        name = key.removeprefix(_DDP_PREFIX)
        if name in stripped:
            raise ReidError(f"the checkpoint holds both {name!r} and {key!r}")
        stripped[name] = value
    return stripped


def as_state_dict(loaded: object, source: str) -> FastReIDCheckpoint:
    """A raw state dict, or FastReID's `{"model": state_dict, "optimizer": ..., ...}` file."""
    if not isinstance(loaded, Mapping):
        raise ReidError(f"{source} holds a {type(loaded).__name__}, not a FastReID state dict")
    other: tuple[str, ...] = ()
    state: Mapping[object, object] = loaded
    if isinstance(loaded.get("model"), Mapping):
        state = loaded["model"]
        other = tuple(str(key) for key in loaded if key != "model")
    not_tensors = [str(key) for key, value in state.items() if not isinstance(value, Tensor)]
    if not_tensors or not state:
        found = ", ".join(not_tensors[:5]) or "nothing"
        raise ReidError(
            f"{source} is neither a state dict nor a {{'model': state_dict}} file "
            f"(non-tensor entries: {found})"
        )
    tensors = {str(key): value for key, value in state.items() if isinstance(value, Tensor)}
    return FastReIDCheckpoint(state=strip_module_prefix(tensors), other_entries=other)


def read_fastreid_checkpoint(path: Path) -> FastReIDCheckpoint:
    """Load `path` with `torch.load(weights_only=True)` on the CPU (no code is unpickled)."""
    if not path.is_file():
        raise ReidError(f"checkpoint {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ReidError(f"checkpoint {path} cannot be read safely ({reason})") from None
    return as_state_dict(loaded, str(path))


def detect_architecture(keys: Mapping[str, object]) -> Architecture:
    """`MGN` when any `b*_head.` key is present, else `Baseline`."""
    mgn_prefixes = tuple(f"{name}_head." for name in MGN_HEADS)
    return (
        Architecture.MGN if any(k.startswith(mgn_prefixes) for k in keys) else Architecture.BASELINE
    )


def head_prefixes(architecture: Architecture) -> tuple[str, ...]:
    """FastReID's embedding-head prefixes: `("heads",)` or the eight `b*_head`."""
    if architecture is Architecture.MGN:
        return tuple(f"{name}_head" for name in MGN_HEADS)
    return ("heads",)


def detect_layout(keys: Mapping[str, object]) -> CheckpointLayout:
    """The key generation, judged from the head names first, then from the pixel buffers.

    A head without neck or classifier keys (e.g. `WITH_BNNECK=False` and no classifier) is
    `CURRENT` unless pixel buffers were saved.
    """
    heads = head_prefixes(detect_architecture(keys))
    names = {key.split(".", 1)[1] for key in keys if key.split(".", 1)[0] in heads and "." in key}
    if any(name.startswith("bnneck.") for name in names):
        return CheckpointLayout.OLD
    if "classifier.weight" in names or any(key in keys for key in PIXEL_KEYS):
        return CheckpointLayout.INTERMEDIATE
    return CheckpointLayout.CURRENT


_NON_LOCAL_G = re.compile(r"(?:^|\.)NL_\d+\.\d+\.g\.weight$")


def non_local_inner_channels(state: Mapping[str, Tensor]) -> int | None:
    """Width of the non-local embeddings (`g.weight`: (inner, C, 1, 1)), None without NL blocks.

    FastReID's blocks all have 1 (its constructor quirk); differing widths are refused.
    """
    widths = {int(value.shape[0]) for key, value in state.items() if _NON_LOCAL_G.search(key)}
    if len(widths) > 1:
        raise ReidError(f"the checkpoint's non-local blocks have differing widths {sorted(widths)}")
    return widths.pop() if widths else None
