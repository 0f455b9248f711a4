"""FastReID state-dict keys → our model's keys.

Bodies: our ResNet family keeps FastReID's (and torchvision's / IBN-Net's) module names, so body
keys keep their names — `backbone.conv1.weight`, `backbone.layer3.4.bn1.IN.bias`,
`backbone.NL_2.0.W.1.running_var` — and MGN keeps FastReID's numbered trunk
(`backbone.{0,1,4,5,6}.*`: conv1, bn1, layer1, layer2, layer3.0) and branches
(`b{1,2,3}.{0,1}.*`: rest of layer3, layer4). Whether a body key exists in our model is decided
by the model itself during key accounting.

Heads are renamed (FastReID prefix `heads` → our `head`; MGN's `b*_head` keep their prefix):

    pool_layer.p                      → pooling.p                 learnable GeM exponent
    bnneck.<bn>                       → neck.bn.<bn>              v0.1.1 BNNeck
    bottleneck.0.weight (D, C, 1, 1)  → neck.projection.weight    EMBEDDING_DIM > 0: 1×1 conv,
                                                                  reshaped to (D, C)
    bottleneck.{0|1}.<bn>             → neck.bn.<bn>              index 1 after such a conv
    weight, classifier.weight         → classifier.weight         current / older classifier

with <bn> one of weight, bias, running_mean, running_var, num_batches_tracked.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from reid_platform.modeling.fastreid_import.layouts import MGN_HEADS, PIXEL_KEYS, Architecture

BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

_BASELINE_BODY = re.compile(r"^backbone\.(?P<rest>.+)$")
_MGN_BODY = re.compile(r"^(?P<module>backbone\.[01456]|b[123]\.[01])\.(?P<rest>.+)$")
_BN = "|".join(BN_FIELDS)
_HEAD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^pool_layer\.p$"), "pooling.p"),
    (re.compile(rf"^bnneck\.(?P<field>{_BN})$"), "neck.bn.{field}"),
    (re.compile(r"^(classifier\.)?weight$"), "classifier.weight"),
)
_BOTTLENECK = re.compile(rf"^bottleneck\.(?P<index>\d+)\.(?P<field>{_BN})$")


@dataclass(frozen=True, slots=True)
class MappedKey:
    """Where one FastReID tensor goes: our `target` key, and whether it is a 1×1 conv weight
    (D, C, 1, 1) that fills our linear weight (D, C)."""

    target: str
    from_conv1x1: bool = False


def _head_names(architecture: Architecture) -> dict[str, str]:
    """FastReID head prefix → our head prefix."""
    if architecture is Architecture.MGN:
        return {f"{name}_head": f"{name}_head" for name in MGN_HEADS}
    return {"heads": "head"}


def _has_projection(state: Mapping[str, Tensor], head: str) -> bool:
    """True when the head's `bottleneck.0` is the EMBEDDING_DIM 1×1 conv (a 4-D weight)."""
    weight = state.get(f"{head}.bottleneck.0.weight")
    return weight is not None and weight.dim() == 4


def _map_head_key(name: str, ours: str, projected: bool) -> MappedKey | None:
    """`name` is the part after the FastReID head prefix; `ours` our head prefix."""
    for pattern, template in _HEAD_RULES:
        match = pattern.match(name)
        if match:
            return MappedKey(f"{ours}.{template.format(**match.groupdict())}")
    match = _BOTTLENECK.match(name)
    if match is None:
        return None
    index, field = int(match["index"]), match["field"]
    if projected and index == 0:
        return (
            MappedKey(f"{ours}.neck.projection.weight", from_conv1x1=True)
            if field == "weight"
            else None
        )
    return MappedKey(f"{ours}.neck.bn.{field}") if index == (1 if projected else 0) else None


def map_fastreid_key(
    key: str, architecture: Architecture, state: Mapping[str, Tensor]
) -> MappedKey | None:
    """Our key for FastReID's `key`, or None when no rule places it (pixel buffers included:
    they are validated, not loaded). `state` tells whether a head has a projection conv."""
    if key in PIXEL_KEYS:
        return None
    body = (_MGN_BODY if architecture is Architecture.MGN else _BASELINE_BODY).match(key)
    if body is not None:
        return MappedKey(key)
    head, _, name = key.partition(".")
    ours = _head_names(architecture).get(head)
    if ours is None or not name:
        return None
    return _map_head_key(name, ours, _has_projection(state, head))


def map_fastreid_keys(
    state: Mapping[str, Tensor], architecture: Architecture
) -> dict[str, MappedKey | None]:
    """`map_fastreid_key` for every key of `state`, in its order."""
    return {key: map_fastreid_key(key, architecture, state) for key in state}
