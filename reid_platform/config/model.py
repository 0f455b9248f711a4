"""Model config: backbone, aggregation (pooling), neck, classifier layer and architecture.

Every variant with parameters owns a block named after it, so a search can set
`model.classifier.arcface.margin` without touching the circle block.
"""

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from reid_platform.config.base import Float, Section, VariantSection

RESNET_DEPTHS = (18, 34, 50, 101, 152)
BUILTIN_BACKBONES = (
    *(f"resnet{depth}" for depth in RESNET_DEPTHS),
    "resnext50_32x4d",
    "resnext101_32x4d",
    "resnest50",
    "resnest101",
)
_TIMM_NAME = re.compile(r"^timm:[A-Za-z0-9_.]+$")


class PretrainedConfig(Section):
    """Where ImageNet weights come from; no downloads happen, absent weights mean random init.

    `path` is a weights file; `cache_dir` a folder searched for the backbone's usual file name.
    """

    path: str | None = None
    cache_dir: str | None = None


class BackboneConfig(Section):
    """A built-in ResNet-family backbone with its options, or any timm model as `timm:<name>`.

    `last_stride: 1` keeps the last stage at the previous stage's resolution (the re-id default);
    for `timm:` CNNs it dilates the last stage (timm's `output_stride`), and ViT-like timm models
        need `last_stride: 2` (their native patch grid). `non_local_inner_channels` is the width of
    the non-local blocks' embeddings (None: half the block's channels, as in the non-local
    paper; FastReID's checkpoints were trained with 1).
    """

    name: str = "resnet50"
    ibn: bool = False
    se: bool = False
    non_local: bool = False
    non_local_inner_channels: int | None = Field(None, ge=1)
    last_stride: Literal[1, 2] = 1
    reference_stem: bool = False
    norm: Literal["bn", "syncbn"] = "bn"
    pretrained: PretrainedConfig = PretrainedConfig()

    @field_validator("name")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        if name in BUILTIN_BACKBONES or _TIMM_NAME.match(name):
            return name
        from reid_platform.config.registry import did_you_mean

        raise ValueError(f"unknown backbone {name!r}{did_you_mean(name, BUILTIN_BACKBONES)}")


class GeMConfig(Section):
    """Generalised mean pooling; `learnable` makes p a parameter (initialised at `p`)."""

    p: Float = Field(3.0, ge=1.0)
    learnable: bool = False


class ClippedAverageConfig(Section):
    """Average pooling of activations clipped to `max_value` (the reference's clipped pool)."""

    max_value: Float = Field(1.0, gt=0.0)


class PoolingConfig(VariantSection):
    """Aggregation of the backbone feature map (B, C, H, W) to (B, C)."""

    variant_blocks: ClassVar[tuple[str, ...]] = ("gem", "clipped_avg")
    kind: Literal["avg", "max", "gem", "attention", "avg_max", "clipped_avg"] = "avg"
    gem: GeMConfig = GeMConfig()
    clipped_avg: ClippedAverageConfig = ClippedAverageConfig()


class ReductionConfig(Section):
    """1×1 conv to `dim` channels + BN + ReLU + dropout before the classifier."""

    dim: int = Field(512, ge=1)
    dropout: Float = Field(0.0, ge=0.0, lt=1.0)


class NeckConfig(VariantSection):
    """What sits between pooling and classifier.

    `bn`: BNNeck (bias frozen); `linear`: a linear layer to `linear.dim`; `reduction`: see
    `ReductionConfig`; `none`: the pooled feature is used directly. `embedding` says whether the
    retrieval embedding is taken `before` or `after` the neck, `metric_feature` the same for the
    triplet / pairwise losses' input (the reference's `NECK_FEAT`; it always evaluated `after`).
    """

    variant_blocks: ClassVar[tuple[str, ...]] = ("linear", "reduction")
    kind: Literal["bn", "linear", "reduction", "none"] = "bn"
    embedding: Literal["before", "after"] = "after"
    metric_feature: Literal["before", "after"] = "before"
    linear: ReductionConfig = ReductionConfig()
    reduction: ReductionConfig = ReductionConfig()


class MarginSoftmaxConfig(Section):
    """Scale s and margin m of a margin-softmax classifier layer."""

    scale: Float = Field(64.0, gt=0.0)
    margin: Float = Field(0.35, ge=0.0)


class ClassifierConfig(VariantSection):
    """The identity classifier layer feeding the softmax (cross-entropy) loss."""

    variant_blocks: ClassVar[tuple[str, ...]] = ("cosface", "arcface", "circle")
    kind: Literal["linear", "cosface", "arcface", "circle"] = "linear"
    cosface: MarginSoftmaxConfig = MarginSoftmaxConfig(scale=30.0, margin=0.35)
    arcface: MarginSoftmaxConfig = MarginSoftmaxConfig(scale=30.0, margin=0.5)
    circle: MarginSoftmaxConfig = MarginSoftmaxConfig(scale=64.0, margin=0.35)


class MGNConfig(Section):
    """Multiple Granularity Network: global + 2-part + 3-part branches, one head per output."""

    branch_embedding_dim: int = Field(256, ge=1)


class ModelConfig(VariantSection):
    """The re-id model. `kind: baseline` is backbone → pooling → neck → classifier."""

    variant_blocks: ClassVar[tuple[str, ...]] = ("mgn",)
    kind: Literal["baseline", "mgn"] = "baseline"
    backbone: BackboneConfig = BackboneConfig()
    pooling: PoolingConfig = PoolingConfig()
    neck: NeckConfig = NeckConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    mgn: MGNConfig = MGNConfig()
