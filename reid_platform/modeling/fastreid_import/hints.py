"""Config overrides suggested when a checkpoint's keys and the config's model disagree.

They only complete a refusal's sentence: the importer never guesses architecture options
(IBN, SE, non-local, pooling, neck, depth) from weights on the user's behalf.
"""

import re
from collections.abc import Iterable, Mapping

from torch import Tensor

from reid_platform.config import ReidConfig
from reid_platform.modeling.fastreid_import.layouts import Architecture

_DEPTHS = {
    (2, False): "resnet18",
    (6, False): "resnet34",
    (6, True): "resnet50",
    (23, True): "resnet101",
    (36, True): "resnet152",
}
"""(blocks in layer3, bottleneck blocks) → ResNet depth."""

_LAYER3_BLOCK = {
    Architecture.BASELINE: re.compile(r"^backbone\.layer3\.(\d+)\."),
    # MGN: layer3.0 is the trunk's `backbone.6`, layer3.1... are `b1.0.0...`.
    Architecture.MGN: re.compile(r"^b1\.0\.(\d+)\."),
}


def _any(keys: Iterable[str], fragment: str) -> bool:
    return any(fragment in key for key in keys)


def _backbone_hints(keys: list[str], config: ReidConfig) -> list[str]:
    backbone = config.model.backbone
    hints: list[str] = []
    for option, fragment in (("ibn", ".bn1.IN."), ("se", ".se.fc."), ("non_local", "NL_")):
        present = _any(keys, fragment)
        if present != getattr(backbone, option):
            hints.append(f"model.backbone.{option}={str(present).lower()}")
    return hints


def _depth_hint(keys: list[str], config: ReidConfig, architecture: Architecture) -> list[str]:
    pattern = _LAYER3_BLOCK[architecture]
    indices = [int(match[1]) for key in keys if (match := pattern.match(key))]
    if not indices or not config.model.backbone.name.startswith("resnet"):
        return []
    blocks = max(indices) + 1 + (1 if architecture is Architecture.MGN else 0)
    name = _DEPTHS.get((blocks, _any(keys, ".conv3.")))
    return [f"model.backbone.name={name}"] if name and name != config.model.backbone.name else []


def _head_hints(keys: list[str], config: ReidConfig) -> list[str]:
    hints: list[str] = []
    pooling = config.model.pooling
    learnable_p = pooling.kind == "gem" and pooling.gem.learnable
    if _any(keys, ".pool_layer.p") and not learnable_p:
        hints.append("model.pooling.kind=gem model.pooling.gem.learnable=true")
    elif learnable_p and not _any(keys, ".pool_layer.p"):
        hints.append("model.pooling.gem.learnable=false")
    has_neck = _any(keys, ".bnneck.") or _any(keys, ".bottleneck.")
    if has_neck and config.model.neck.kind != "bn":
        hints.append("model.neck.kind=bn")
    elif not has_neck and config.model.neck.kind == "bn" and config.model.kind != "mgn":
        hints.append("model.neck.kind=none")
    return hints


def suggested_overrides(
    state: Mapping[str, Tensor], config: ReidConfig, architecture: Architecture
) -> list[str]:
    """Dotted overrides that would bring the config's model closer to the checkpoint's."""
    keys = list(state)
    return (
        _depth_hint(keys, config, architecture)
        + _backbone_hints(keys, config)
        + _head_hints(keys, config)
    )
