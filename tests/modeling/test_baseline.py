"""The baseline model's contract: outputs in train vs eval, input handling, export, compile."""

import pytest
import torch
from torch import Tensor, nn

from reid_platform.modeling import ModelOutput, Preprocessing, ReidBaselineModel
from reid_platform.modeling.classifiers import CircleSoftmaxClassifier, LinearClassifier
from reid_platform.modeling.necks import BNNeck, LinearNeck
from reid_platform.modeling.pooling import GeMPooling

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
HEIGHT, WIDTH, NUM_CLASSES = 64, 32, 7


def preprocessing() -> Preprocessing:
    return Preprocessing(input_size=(HEIGHT, WIDTH), mean=MEAN, std=STD)


def make_model(
    backbone: nn.Module,
    *,
    embedding: str = "before",
    metric_feature: str | None = None,
    circle: bool = False,
    linear_neck: bool = False,
) -> ReidBaselineModel:
    torch.manual_seed(0)
    channels = backbone.out_channels
    neck: nn.Module = (
        LinearNeck(in_features=channels, out_features=10)
        if linear_neck
        else BNNeck(in_features=channels)
    )
    classifier: nn.Module = (
        CircleSoftmaxClassifier(
            in_features=neck.out_features, num_classes=NUM_CLASSES, scale=16.0, margin=0.25
        )
        if circle
        else LinearClassifier(in_features=neck.out_features, num_classes=NUM_CLASSES)
    )
    return ReidBaselineModel(
        backbone=backbone,
        pooling=GeMPooling(channels=channels, p=3.0, learnable=True),
        neck=neck,
        classifier=classifier,
        embedding=embedding,  # type: ignore[arg-type]
        metric_feature=metric_feature or embedding,  # type: ignore[arg-type]
        preprocessing=preprocessing(),
    )


def images(batch: int, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, HEIGHT, WIDTH), generator=generator).float()


def targets(batch: int) -> Tensor:
    return torch.arange(batch) % NUM_CLASSES


@pytest.fixture
def model(tiny_backbone) -> ReidBaselineModel:
    return make_model(tiny_backbone())


def test_training_output_contract(model: ReidBaselineModel) -> None:
    out = model.train()(images(4), targets(4))
    assert isinstance(out, ModelOutput)
    assert out.embedding.shape == (4, model.embedding_dim)
    assert [t.shape for t in out.logits] == [(4, NUM_CLASSES)]
    assert [t.shape for t in out.class_scores] == [(4, NUM_CLASSES)]
    assert [t.shape for t in out.metric_features] == [(4, model.embedding_dim)]
    assert all(torch.isfinite(t).all() for t in (out.embedding, *out.logits))


def test_eval_output_has_only_the_embedding_and_is_deterministic(model: ReidBaselineModel) -> None:
    model.eval()
    out = model(images(3))
    assert out.embedding.shape == (3, model.embedding_dim)
    assert out.logits == () and out.class_scores == () and out.metric_features == ()
    assert torch.equal(out.embedding, model(images(3)).embedding)


def test_metric_feature_is_chosen_apart_from_the_embedding(tiny_backbone) -> None:
    """BoT: triplet on the pooled feature, retrieval on the BNNeck output (FastReID's eval)."""
    model = make_model(
        tiny_backbone(), embedding="after", metric_feature="before", linear_neck=True
    ).train()
    x = images(4)
    out = model(x, targets(4))
    pooled = model.head.pooling(model.forward_features(x))
    torch.testing.assert_close(out.metric_features[0], pooled)
    torch.testing.assert_close(out.embedding, model.head.neck(pooled))
    assert out.metric_features[0].shape != out.embedding.shape  # linear neck: 10-d vs C-d


@pytest.mark.parametrize("linear_neck", [False, True])
def test_embedding_before_and_after_the_neck(tiny_backbone, linear_neck: bool) -> None:
    before = make_model(tiny_backbone(), embedding="before", linear_neck=linear_neck)
    after = make_model(tiny_backbone(), embedding="after", linear_neck=linear_neck)
    channels = tiny_backbone().out_channels
    assert before.embedding_dim == channels
    assert after.embedding_dim == (10 if linear_neck else channels)
    x = images(4)
    for model in (before, after):
        train = model.train()(x, targets(4))
        assert train.embedding.shape == train.metric_features[0].shape == (4, model.embedding_dim)
        assert model.eval()(x).embedding.shape == (4, model.embedding_dim)
    # With the same weights, "before" is the pooled feature and "after" is the neck of it.
    after.load_state_dict(before.state_dict())
    pooled = before.eval()(x).embedding
    torch.testing.assert_close(after.eval()(x).embedding, after.head.neck(pooled))


def test_margin_applies_only_with_targets(tiny_backbone) -> None:
    model = make_model(tiny_backbone(), circle=True).train()
    x = images(4)
    with_targets = model(x, targets(4))
    assert not torch.allclose(with_targets.logits[0], with_targets.class_scores[0])
    without = model(x)
    torch.testing.assert_close(without.logits[0], without.class_scores[0])


def test_gradients_reach_every_trainable_parameter(model: ReidBaselineModel) -> None:
    out = model.train()(images(4), targets(4))
    loss = torch.nn.functional.cross_entropy(out.logits[0], targets(4))
    (loss + (out.metric_features[0] * torch.randn_like(out.metric_features[0])).sum()).backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert not model.head.neck.bn.bias.requires_grad


def test_normalisation_is_not_in_place_and_matches_mean_std(model: ReidBaselineModel) -> None:
    x = images(2)
    before = x.clone()
    model.eval()(x)
    assert torch.equal(x, before)
    expected = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model.normalization(x), expected)


def test_uint8_input_equals_float_input(model: ReidBaselineModel) -> None:
    x = images(3)
    model.eval()
    torch.testing.assert_close(model(x.to(torch.uint8)).embedding, model(x).embedding)


def test_mean_std_are_buffers_outside_the_state_dict(model: ReidBaselineModel) -> None:
    buffers = dict(model.named_buffers())
    assert "normalization.pixel_mean" in buffers and "normalization.pixel_std" in buffers
    assert not any("pixel_" in key for key in model.state_dict())
    assert model.preprocessing == preprocessing()


def test_forward_is_forward_features_then_forward_head(model: ReidBaselineModel) -> None:
    model.eval()
    x = images(2)
    feature_map = model.forward_features(x)
    assert feature_map.shape == (2, model.backbone.out_channels, HEIGHT // 16, WIDTH // 16)
    torch.testing.assert_close(model.forward_head(feature_map).embedding, model(x).embedding)


def test_channels_last_gives_the_same_embedding(model: ReidBaselineModel) -> None:
    model.eval()
    x = images(2)
    expected = model(x).embedding
    model_cl = model.to(memory_format=torch.channels_last)
    got = model_cl(x.to(memory_format=torch.channels_last)).embedding
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_traces_as_one_graph_for_torch_compile(model: ReidBaselineModel, mode: str) -> None:
    torch._dynamo.reset()
    model.train(mode == "train")
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    x, y = images(4), targets(4)
    out = compiled(x, y)
    assert isinstance(out, ModelOutput)
    if mode == "eval":
        torch.testing.assert_close(out.embedding, model(x, y).embedding)


class EmbeddingOnly(nn.Module):
    """The exporter's view: images → embedding."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        embedding: Tensor = self.model(images).embedding
        return embedding


def test_tiny_model_exports_to_onnx(model: ReidBaselineModel, onnx_matches) -> None:
    model.train()
    with torch.no_grad():
        model(images(8, seed=3))  # running statistics away from the init
    onnx_matches(EmbeddingOnly(model.eval()), lambda b: (images(b, seed=b),), ["images"])


def _frozen_bn_training_output(model: nn.Module, x: Tensor) -> ModelOutput:
    """The training forward (with targets, so with the margin in `logits`) with every BN layer
    using its running statistics: what a teacher's eval-mode scores must equal."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    out: ModelOutput = model(x, targets(x.shape[0]))
    return out


@pytest.mark.parametrize("circle", [False, True])
def test_forward_scores_gives_margin_free_scores_in_either_mode(
    tiny_backbone, circle: bool
) -> None:
    model = make_model(tiny_backbone(), embedding="after", circle=circle)
    x = images(4)
    model.train()
    trained = model(x, targets(4))
    scores = model.forward_scores(x)
    torch.testing.assert_close(scores.class_scores[0], trained.class_scores[0])
    torch.testing.assert_close(scores.embedding, trained.embedding)
    model.eval()
    with torch.no_grad():
        teacher = model.forward_scores(x)
        assert torch.equal(teacher.embedding, model(x).embedding)
        reference = _frozen_bn_training_output(model, x)
    torch.testing.assert_close(teacher.class_scores[0], reference.class_scores[0])
    assert teacher.logits == () and teacher.metric_features == ()
    if circle:  # the margin is in the training logits only
        assert not torch.allclose(reference.logits[0], reference.class_scores[0])
