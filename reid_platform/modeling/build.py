"""Model config → model: the only place a `ModelConfig` meets the modeling components.

Poolings, necks and classifier layers are looked up in their registries by the config's `kind`
names (importing their packages registers them); each variant's own parameter block becomes the
component's keyword arguments here.
"""

import logging
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import TypeVar

from torch import nn

# Imported for their registrations in POOLINGS, NECKS and CLASSIFIERS.
import reid_platform.modeling.classifiers
import reid_platform.modeling.necks
import reid_platform.modeling.pooling  # noqa: F401
from reid_platform.config.input import InputConfig
from reid_platform.config.model import (
    ClassifierConfig,
    MarginSoftmaxConfig,
    ModelConfig,
    NeckConfig,
    PoolingConfig,
)
from reid_platform.errors import ConfigError
from reid_platform.modeling.backbones import StagedBackbone, build_backbone
from reid_platform.modeling.baseline import EmbeddingHead, ReidBaselineModel, declared_width
from reid_platform.modeling.mgn import MultipleGranularityNetwork
from reid_platform.modeling.necks import BNNeck
from reid_platform.modeling.output import Preprocessing
from reid_platform.modeling.registry import CLASSIFIERS, NECKS, POOLINGS

logger = logging.getLogger(__name__)

Options = dict[str, object]
_Section = TypeVar("_Section")


def _margin(block: MarginSoftmaxConfig) -> Options:
    return {"scale": block.scale, "margin": block.margin}


POOLING_OPTIONS: Mapping[str, Callable[[PoolingConfig], Options]] = MappingProxyType(
    {
        "gem": lambda c: {"p": c.gem.p, "learnable": c.gem.learnable},
        "clipped_avg": lambda c: {"max_value": c.clipped_avg.max_value},
    }
)
"""Pooling kind → keyword arguments from its block (beyond `channels`); absent: none."""

NECK_OPTIONS: Mapping[str, Callable[[NeckConfig], Options]] = MappingProxyType(
    {
        "linear": lambda c: {"out_features": c.linear.dim, "dropout": c.linear.dropout},
        "reduction": lambda c: {"out_features": c.reduction.dim, "dropout": c.reduction.dropout},
    }
)
"""Neck kind → keyword arguments from its block (beyond `in_features`); absent: none."""

CLASSIFIER_OPTIONS: Mapping[str, Callable[[ClassifierConfig], Options]] = MappingProxyType(
    {
        "cosface": lambda c: _margin(c.cosface),
        "arcface": lambda c: _margin(c.arcface),
        "circle": lambda c: _margin(c.circle),
    }
)
"""Classifier kind → keyword arguments (beyond `in_features`, `num_classes`); absent: none."""


def _options(
    table: Mapping[str, Callable[[_Section], Options]], kind: str, config: _Section
) -> Options:
    options_of = table.get(kind)
    return options_of(config) if options_of is not None else {}


def pooling_factory(config: PoolingConfig, *, channels: int) -> Callable[[], nn.Module]:
    """A zero-argument builder of fresh poolings for (B, `channels`, h, w) maps."""
    return partial(
        POOLINGS.get(config.kind),
        channels=channels,
        **_options(POOLING_OPTIONS, config.kind, config),
    )


def build_pooling(config: PoolingConfig, *, channels: int) -> nn.Module:
    """The pooling `config.kind` names: (B, `channels`, h, w) → (B, `channels`)."""
    return pooling_factory(config, channels=channels)()


def build_neck(config: NeckConfig, *, in_features: int) -> nn.Module:
    """The neck `config.kind` names: (B, `in_features`) → (B, out_features)."""
    options = _options(NECK_OPTIONS, config.kind, config)
    return NECKS.get(config.kind)(in_features=in_features, **options)


def build_classifier(config: ClassifierConfig, *, in_features: int, num_classes: int) -> nn.Module:
    """The classifier layer `config.kind` names: (B, `in_features`) → (logits, scores)."""
    options = _options(CLASSIFIER_OPTIONS, config.kind, config)
    return CLASSIFIERS.get(config.kind)(in_features=in_features, num_classes=num_classes, **options)


def build_preprocessing(input_config: InputConfig) -> Preprocessing:
    """The input contract at test time: `size_test`, mean/std (0-255), interpolation."""
    return Preprocessing(
        input_size=input_config.size_test,
        mean=input_config.mean,
        std=input_config.std,
        interpolation=input_config.interpolation,
    )


def build_model(config: ModelConfig, input_config: InputConfig, *, num_classes: int) -> nn.Module:
    """The model `config.kind` names, classifying `num_classes` training identities.

    Returns a `ReidBaselineModel` or a `MultipleGranularityNetwork`; both follow the same API
    (`forward`, `forward_features`, `forward_head`, `embedding_dim`, `preprocessing`).
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    preprocessing = build_preprocessing(input_config)
    model: ReidBaselineModel | MultipleGranularityNetwork = (
        _build_mgn(config, preprocessing, num_classes)
        if config.kind == "mgn"
        else _build_baseline(config, preprocessing, num_classes)
    )
    parameters = sum(p.numel() for p in model.parameters())
    logger.info(
        "built %s model on %s: embedding %d-d, %d classes, %.2f M parameters",
        config.kind,
        config.backbone.name,
        model.embedding_dim,
        num_classes,
        parameters / 1e6,
    )
    return model


def _build_baseline(
    config: ModelConfig, preprocessing: Preprocessing, num_classes: int
) -> ReidBaselineModel:
    backbone = build_backbone(config.backbone)
    channels = declared_width(backbone, "out_channels")
    neck = build_neck(config.neck, in_features=channels)
    return ReidBaselineModel(
        backbone=backbone,
        pooling=build_pooling(config.pooling, channels=channels),
        neck=neck,
        classifier=build_classifier(
            config.classifier,
            in_features=declared_width(neck, "out_features"),
            num_classes=num_classes,
        ),
        embedding=config.neck.embedding,
        metric_feature=config.neck.metric_feature,
        preprocessing=preprocessing,
    )


def _build_mgn(
    config: ModelConfig, preprocessing: Preprocessing, num_classes: int
) -> MultipleGranularityNetwork:
    if config.neck.kind != "bn":
        raise ConfigError(
            f"model.neck.kind={config.neck.kind!r} is not available with model.kind='mgn': "
            "its heads are always a projection to mgn.branch_embedding_dim plus a BN neck ('bn')"
        )
    part_backbone = build_backbone(config.backbone.model_copy(update={"last_stride": 1}))
    global_last_stage = _staged(part_backbone, config).stage(4)
    if config.backbone.last_stride != 1:
        # Same weights, the configured stride: a second build, loaded from the first.
        global_backbone = build_backbone(config.backbone)
        global_backbone.load_state_dict(part_backbone.state_dict())
        global_last_stage = _staged(global_backbone, config).stage(4)
    channels = declared_width(part_backbone, "out_channels")
    make_pooling = pooling_factory(config.pooling, channels=channels)
    dim = config.mgn.branch_embedding_dim

    def make_head() -> EmbeddingHead:
        return EmbeddingHead(
            pooling=make_pooling(),
            neck=BNNeck(in_features=channels, out_features=dim),
            classifier=build_classifier(
                config.classifier, in_features=dim, num_classes=num_classes
            ),
            in_channels=channels,
            embedding=config.neck.embedding,
            metric_feature=config.neck.metric_feature,
        )

    return MultipleGranularityNetwork(
        backbone=part_backbone,
        global_last_stage=global_last_stage,
        make_head=make_head,
        preprocessing=preprocessing,
    )


def _staged(backbone: nn.Module, config: ModelConfig) -> StagedBackbone:
    if not isinstance(backbone, StagedBackbone):
        raise ConfigError(
            f"model.backbone.name={config.backbone.name!r} has no ResNet stages; "
            "model.kind='mgn' needs a ResNet-family backbone (resnet, resnext, resnest)"
        )
    return backbone
