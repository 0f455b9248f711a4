"""Config → model: every kind reaches its component with its block's options; published sizes."""

import pytest
import torch
from torch import Tensor, nn

from reid_platform.config.input import InputConfig
from reid_platform.config.model import (
    ClassifierConfig,
    ModelConfig,
    NeckConfig,
    PoolingConfig,
)
from reid_platform.modeling import ReidBaselineModel, build_model
from reid_platform.modeling.build import build_classifier, build_neck, build_pooling
from reid_platform.modeling.classifiers import ArcFaceClassifier, CircleSoftmaxClassifier
from reid_platform.modeling.necks import BNNeck, LinearNeck, ReductionNeck
from reid_platform.modeling.pooling import AttentionPooling, ClippedAveragePooling, GeMPooling


def test_pooling_options_come_from_the_kinds_block() -> None:
    gem = build_pooling(
        PoolingConfig.model_validate({"kind": "gem", "gem": {"p": 4.0, "learnable": True}}),
        channels=8,
    )
    assert isinstance(gem, GeMPooling) and isinstance(gem.p, Tensor) and gem.p.item() == 4.0
    clipped = build_pooling(
        PoolingConfig.model_validate({"kind": "clipped_avg", "clipped_avg": {"max_value": 2.5}}),
        channels=8,
    )
    assert isinstance(clipped, ClippedAveragePooling) and clipped.max_value == 2.5
    attention = build_pooling(PoolingConfig.model_validate({"kind": "attention"}), channels=8)
    assert isinstance(attention, AttentionPooling) and attention.score.in_channels == 8


def test_neck_options_come_from_the_kinds_block() -> None:
    linear = build_neck(
        NeckConfig.model_validate({"kind": "linear", "linear": {"dim": 32, "dropout": 0.1}}),
        in_features=64,
    )
    assert isinstance(linear, LinearNeck) and linear.out_features == 32
    assert linear.dropout.p == pytest.approx(0.1)
    reduction = build_neck(
        NeckConfig.model_validate({"kind": "reduction", "reduction": {"dim": 16}}),
        in_features=64,
    )
    assert isinstance(reduction, ReductionNeck) and reduction.out_features == 16
    bn = build_neck(NeckConfig.model_validate({"kind": "bn"}), in_features=64)
    assert isinstance(bn, BNNeck) and bn.out_features == 64


def test_classifier_options_come_from_the_kinds_block() -> None:
    arcface = build_classifier(
        ClassifierConfig.model_validate(
            {"kind": "arcface", "arcface": {"scale": 20.0, "margin": 0.3}}
        ),
        in_features=16,
        num_classes=9,
    )
    assert isinstance(arcface, ArcFaceClassifier)
    assert (arcface.scale, arcface.margin, arcface.weight.shape) == (20.0, 0.3, (9, 16))
    circle = build_classifier(
        ClassifierConfig.model_validate({"kind": "circle"}), in_features=16, num_classes=9
    )
    assert isinstance(circle, CircleSoftmaxClassifier)
    assert (circle.scale, circle.margin) == (64.0, 0.35)  # the reference's SBS values


def test_num_classes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model(ModelConfig(), InputConfig(), num_classes=0)


pytestmark_backbones = pytest.mark.usefixtures("require_backbones")

KINDS = (
    [("pooling", kind) for kind in ("avg", "max", "gem", "attention", "avg_max", "clipped_avg")]
    + [("neck", kind) for kind in ("bn", "linear", "reduction", "none")]
    + [("classifier", kind) for kind in ("linear", "cosface", "arcface", "circle")]
)


def small_model(**model: object) -> nn.Module:
    config = ModelConfig.model_validate({"backbone": {"name": "resnet18"}, **model})
    input_config = InputConfig(size_train=(64, 32), size_test=(64, 32))
    torch.manual_seed(0)
    return build_model(config, input_config, num_classes=5)


@pytestmark_backbones
@pytest.mark.parametrize(("section", "kind"), KINDS)
@pytest.mark.parametrize("embedding", ["before", "after"])
def test_every_kind_builds_and_runs(section: str, kind: str, embedding: str) -> None:
    sections: dict[str, dict[str, object]] = {section: {"kind": kind}}
    sections["neck"] = {**sections.get("neck", {}), "embedding": embedding}
    model = small_model(**sections)
    assert isinstance(model, ReidBaselineModel)
    x = torch.randint(0, 256, (4, 3, 64, 32), dtype=torch.uint8)
    out = model.train()(x, torch.tensor([0, 1, 2, 3]))
    assert out.embedding.shape == (4, model.embedding_dim)
    assert out.logits[0].shape == (4, 5) and torch.isfinite(out.logits[0]).all()
    assert model.eval()(x).embedding.shape == (4, model.embedding_dim)


@pytestmark_backbones
def test_preprocessing_comes_from_the_input_config() -> None:
    config = ModelConfig.model_validate({"backbone": {"name": "resnet18"}})
    input_config = InputConfig(
        size_test=(128, 64), mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0), interpolation="bilinear"
    )
    model = build_model(config, input_config, num_classes=3)
    assert model.preprocessing.input_size == (128, 64)
    assert model.preprocessing.mean == (1.0, 2.0, 3.0)
    assert model.preprocessing.std == (4.0, 5.0, 6.0)
    assert model.preprocessing.interpolation == "bilinear"
    torch.testing.assert_close(
        model.normalization.pixel_std.flatten(), torch.tensor([4.0, 5.0, 6.0])
    )


@pytestmark_backbones
def test_bot_r50_ibn_parameter_count_is_fastreids() -> None:
    # FastReID bagtricks_R50-ibn with 751 classes: 25,050,176 parameters (reference notes §4.2).
    config = ModelConfig.model_validate(
        {
            "backbone": {"name": "resnet50", "ibn": True, "last_stride": 1},
            "pooling": {"kind": "avg"},
            "neck": {"kind": "bn"},
            "classifier": {"kind": "linear"},
        }
    )
    model = build_model(config, InputConfig(), num_classes=751)
    assert sum(p.numel() for p in model.parameters()) == 25_050_176


@pytestmark_backbones
def test_sbs_r50_ibn_parameter_count_is_fastreids() -> None:
    # FastReID sbs_R50-ibn (non-local with one inner channel, GeM-P, circle): 25,078,864.
    config = ModelConfig.model_validate(
        {
            "backbone": {
                "name": "resnet50",
                "ibn": True,
                "non_local": True,
                "non_local_inner_channels": 1,
            },
            "pooling": {"kind": "gem", "gem": {"learnable": True}},
            "neck": {"kind": "bn", "embedding": "after"},
            "classifier": {"kind": "circle"},
        }
    )
    model = build_model(config, InputConfig(), num_classes=751)
    assert sum(p.numel() for p in model.parameters()) == 25_078_864


class EmbeddingOnly(nn.Module):
    """The exporter's view: images → embedding."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        embedding: Tensor = self.model(images).embedding
        return embedding


@pytestmark_backbones
def test_resnet18_baseline_exports_to_onnx(onnx_matches) -> None:
    model = small_model(
        pooling={"kind": "gem", "gem": {"learnable": True}}, neck={"embedding": "after"}
    )
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 64, 32) * 255)  # running statistics away from the init

    def images(batch: int) -> tuple[Tensor]:
        generator = torch.Generator().manual_seed(batch)
        return (torch.rand(batch, 3, 64, 32, generator=generator) * 255,)

    onnx_matches(EmbeddingOnly(model.eval()), images, ["images"])
