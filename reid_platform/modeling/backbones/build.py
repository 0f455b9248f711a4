"""Config → backbone: the only place that reads `BackboneConfig`.

Built-in backbones are registered in `BACKBONES` under their config names; `timm:<name>` goes to
the timm bridge. A factory's keyword parameters are the options it honours: asking a backbone
for an option its factory does not take (IBN on ResNeSt, SE on a timm model, ...) is a
`ConfigError` rather than being silently ignored as in FastReID.
"""

import inspect
import logging
from collections.abc import Callable

from torch import nn

from reid_platform.config.model import BackboneConfig
from reid_platform.errors import ConfigError
from reid_platform.modeling.backbones.pretrained import (
    find_weight_file,
    load_weights,
    read_state_dict,
    weight_file_patterns,
)
from reid_platform.modeling.backbones.resnest import resnest50, resnest101
from reid_platform.modeling.backbones.resnet import (
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)
from reid_platform.modeling.backbones.resnext import resnext50_32x4d, resnext101_32x4d
from reid_platform.modeling.backbones.timm_bridge import timm_backbone
from reid_platform.modeling.registry import BACKBONES

logger = logging.getLogger(__name__)

TIMM_PREFIX = "timm:"

_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnext50_32x4d": resnext50_32x4d,
    "resnext101_32x4d": resnext101_32x4d,
    "resnest50": resnest50,
    "resnest101": resnest101,
}
for _name, _factory in _FACTORIES.items():
    BACKBONES.register(_name)(_factory)

_OFF_BY_DEFAULT = ("ibn", "se", "non_local", "reference_stem")
"""Boolean options a backbone may lack; requesting one it lacks is an error."""
_OPTIONS = ("last_stride", *_OFF_BY_DEFAULT, "non_local_inner_channels")


def _factory_options(
    config: BackboneConfig, factory: Callable[..., nn.Module]
) -> dict[str, object]:
    accepted = inspect.signature(factory).parameters
    options: dict[str, object] = {"last_stride": config.last_stride}
    for option in _OFF_BY_DEFAULT:
        value = getattr(config, option)
        if option in accepted:
            options[option] = value
        elif value:
            raise ConfigError(
                f"model.backbone.{option}=true is not available for {config.name!r} "
                f"(its options: {', '.join(o for o in _OPTIONS if o in accepted)})"
            )
    if "non_local_inner_channels" in accepted:
        options["non_local_inner_channels"] = config.non_local_inner_channels
    return options


def _timm(config: BackboneConfig) -> nn.Module:
    name = config.name.removeprefix(TIMM_PREFIX)
    _factory_options(config, timm_backbone)  # rejects IBN, SE, non-local, reference stem
    file = find_weight_file(
        path=config.pretrained.path,
        cache_dir=config.pretrained.cache_dir,
        patterns=weight_file_patterns(config.name),
        backbone=config.name,
    )
    state_dict = read_state_dict(file) if file is not None else None
    backbone = timm_backbone(name, last_stride=config.last_stride, pretrained_state_dict=state_dict)
    if file is not None:
        logger.info("Loaded ImageNet weights of %s from %s.", config.name, file)
    return backbone


def _builtin(config: BackboneConfig) -> nn.Module:
    factory = BACKBONES.get(config.name)
    backbone = factory(**_factory_options(config, factory))
    file = find_weight_file(
        path=config.pretrained.path,
        cache_dir=config.pretrained.cache_dir,
        patterns=weight_file_patterns(config.name, ibn=config.ibn, se=config.se),
        backbone=config.name,
    )
    if file is not None:
        load_weights(backbone, read_state_dict(file), source=repr(str(file)))
    return backbone


def build_backbone(config: BackboneConfig) -> nn.Module:
    """The backbone described by `config`: a module (B, 3, H, W) → (B, C, h, w) with
    `out_channels == C`; ResNet-family backbones also satisfy `StagedBackbone`.

    ImageNet weights are loaded from `pretrained.path` / `pretrained.cache_dir` when found;
    `norm: syncbn` converts every BatchNorm (IBN halves included) to `SyncBatchNorm`.
    """
    backbone = _timm(config) if config.name.startswith(TIMM_PREFIX) else _builtin(config)
    if config.norm == "syncbn":
        backbone = nn.SyncBatchNorm.convert_sync_batchnorm(backbone)
    return backbone
