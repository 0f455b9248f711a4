"""MGN: branch layout, output sizes and order, gradients, export, the reference's parameters."""

import pytest
import torch
from torch import Tensor, nn

from reid_platform.config.input import InputConfig
from reid_platform.config.model import ModelConfig
from reid_platform.errors import ConfigError
from reid_platform.modeling import (
    ModelOutput,
    MultipleGranularityNetwork,
    Preprocessing,
    build_model,
)
from reid_platform.modeling.baseline import EmbeddingHead
from reid_platform.modeling.classifiers import CircleSoftmaxClassifier
from reid_platform.modeling.mgn import HEAD_NAMES, split_rows
from reid_platform.modeling.necks import BNNeck
from reid_platform.modeling.pooling import GeMPooling

NUM_CLASSES, DIM = 6, 16
PREPROCESSING = Preprocessing(
    input_size=(96, 32), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)
)


def make_mgn(tiny_backbone, *, embedding: str = "after", global_stride: int = 2):
    part = tiny_backbone(last_stride=1)
    channels = part.out_channels
    global_stage = tiny_backbone(last_stride=global_stride).layer4
    global_stage.load_state_dict(part.layer4.state_dict())

    def make_head() -> EmbeddingHead:
        return EmbeddingHead(
            pooling=GeMPooling(channels=channels, learnable=True),
            neck=BNNeck(in_features=channels, out_features=DIM),
            classifier=CircleSoftmaxClassifier(
                in_features=DIM, num_classes=NUM_CLASSES, scale=16.0, margin=0.25
            ),
            in_channels=channels,
            embedding=embedding,  # type: ignore[arg-type]
            metric_feature=embedding,  # type: ignore[arg-type]
        )

    return MultipleGranularityNetwork(
        backbone=part,
        global_last_stage=global_stage,
        make_head=make_head,
        preprocessing=PREPROCESSING,
    )


def images(batch: int, seed: int = 0, height: int = 96) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, 32), generator=generator).float()


def targets(batch: int) -> Tensor:
    return torch.arange(batch) % NUM_CLASSES


def test_training_output_sizes(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).train()
    out = model(images(4), targets(4))
    assert isinstance(out, ModelOutput)
    assert model.embedding_dim == 8 * DIM
    assert out.embedding.shape == (4, 8 * DIM)
    assert [t.shape for t in out.logits] == [(4, NUM_CLASSES)] * 8
    assert [t.shape for t in out.class_scores] == [(4, NUM_CLASSES)] * 8
    assert [t.shape[1] for t in out.metric_features] == [DIM, DIM, DIM, 2 * DIM, 3 * DIM]


def test_eval_output_is_the_embedding_only(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).eval()
    out = model(images(3))
    assert out.embedding.shape == (3, 8 * DIM)
    assert out.logits == () and out.class_scores == () and out.metric_features == ()
    assert torch.equal(out.embedding, model(images(3)).embedding)


def test_embedding_before_the_neck_is_the_pooled_features(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone, embedding="before").eval()
    channels = tiny_backbone().out_channels
    assert model.embedding_dim == 8 * channels
    assert model(images(2)).embedding.shape == (2, 8 * channels)


def test_embedding_order_is_the_references(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).eval()
    x = images(2)
    trunk = model.forward_features(x)
    two_part, three_part = model.b2(trunk), model.b3(trunk)
    expected = {
        "b1": model.b1_head.embed(model.b1(trunk)),
        "b2": model.b2_head.embed(two_part),
        "b3": model.b3_head.embed(three_part),
        "b21": model.b21_head.embed(two_part[:, :, :3]),
        "b22": model.b22_head.embed(two_part[:, :, 3:]),
        "b31": model.b31_head.embed(three_part[:, :, :2]),
        "b32": model.b32_head.embed(three_part[:, :, 2:4]),
        "b33": model.b33_head.embed(three_part[:, :, 4:]),
    }
    embedding = model(x).embedding
    for index, name in enumerate(HEAD_NAMES):
        torch.testing.assert_close(embedding[:, index * DIM : (index + 1) * DIM], expected[name])


def test_metric_features_concatenate_the_parts(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).train()
    out = model(images(4), targets(4))
    features = out.embedding.split(DIM, dim=1)
    torch.testing.assert_close(out.metric_features[3], torch.cat(features[3:5], dim=1))
    torch.testing.assert_close(out.metric_features[4], torch.cat(features[5:8], dim=1))


def test_global_branch_strides_and_copies_are_independent(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone, global_stride=2).eval()
    trunk = model.forward_features(images(1))
    assert model.b1(trunk).shape[2] * 2 == model.b2(trunk).shape[2] == 6
    # Same initial weights in all branches, but separate parameters.
    torch.testing.assert_close(model.b1[1][0].conv1.weight, model.b2[1][0].conv1.weight)
    assert model.b2[0][0].conv1.weight is not model.b3[0][0].conv1.weight
    with torch.no_grad():
        model.b2[0][0].conv1.weight.add_(1.0)
    assert not torch.equal(model.b2[0][0].conv1.weight, model.b3[0][0].conv1.weight)


def test_gradients_reach_every_trainable_parameter(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).train()
    out = model(images(4), targets(4))
    loss = sum(torch.nn.functional.cross_entropy(t, targets(4)) for t in out.logits)
    loss = loss + sum((f * torch.randn_like(f)).sum() for f in out.metric_features)
    loss.backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_split_rows_matches_torch_chunk_and_refuses_short_maps() -> None:
    x = torch.arange(16.0).view(1, 1, 16, 1)
    assert [s.shape[2] for s in split_rows(x, 3)] == [6, 6, 4]  # the reference's 256×128 cut
    assert [s.shape[2] for s in split_rows(x, 2)] == [8, 8]
    with pytest.raises(ValueError, match="height 4 into 3"):
        split_rows(torch.zeros(1, 1, 4, 1), 3)


def test_input_is_not_modified_and_uint8_matches_float(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).eval()
    x = images(2)
    before = x.clone()
    expected = model(x).embedding
    assert torch.equal(x, before)
    torch.testing.assert_close(model(x.to(torch.uint8)).embedding, expected)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_traces_as_one_graph_for_torch_compile(tiny_backbone, mode: str) -> None:
    torch._dynamo.reset()
    model = make_mgn(tiny_backbone).train(mode == "train")
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    out = compiled(images(4), targets(4))
    assert out.embedding.shape == (4, 8 * DIM)
    assert len(out.logits) == (8 if mode == "train" else 0)


def test_channels_last_gives_the_same_embedding(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).eval()
    x = images(2)
    expected = model(x).embedding
    model = model.to(memory_format=torch.channels_last)
    got = model(x.to(memory_format=torch.channels_last)).embedding
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


class EmbeddingOnly(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        embedding: Tensor = self.model(images).embedding
        return embedding


def test_mgn_exports_to_onnx(tiny_backbone, onnx_matches) -> None:
    model = make_mgn(tiny_backbone).train()
    with torch.no_grad():
        model(images(6, seed=5), targets(6))
    onnx_matches(EmbeddingOnly(model.eval()), lambda b: (images(b, seed=b),), ["images"])


def test_mgn_refuses_a_backbone_without_stages() -> None:
    with pytest.raises(ValueError, match="stages"):
        MultipleGranularityNetwork(
            backbone=nn.Conv2d(3, 8, 1),
            global_last_stage=nn.Identity(),
            make_head=lambda: nn.Identity(),  # type: ignore[arg-type, return-value]
            preprocessing=PREPROCESSING,
        )


def mgn_config(**model: object) -> ModelConfig:
    return ModelConfig.model_validate({"kind": "mgn", **model})


@pytest.mark.usefixtures("require_backbones")
def test_built_resnet18_mgn_sizes() -> None:
    config = mgn_config(
        backbone={"name": "resnet18", "last_stride": 2},
        pooling={"kind": "gem", "gem": {"learnable": True}},
        neck={"kind": "bn", "embedding": "after", "metric_feature": "after"},
        classifier={"kind": "circle"},
        mgn={"branch_embedding_dim": 256},
    )
    model = build_model(config, InputConfig(size_test=(96, 32)), num_classes=NUM_CLASSES)
    assert model.preprocessing.input_size == (96, 32)
    out = model.train()(images(4), targets(4))
    assert out.embedding.shape == (4, 8 * 256) and model.embedding_dim == 2048
    assert [t.shape for t in out.logits] == [(4, NUM_CLASSES)] * 8
    assert [t.shape[1] for t in out.metric_features] == [256, 256, 256, 512, 768]
    assert model.eval()(images(2)).embedding.shape == (2, 2048)
    trunk = model.forward_features(images(1))
    assert model.b1(trunk).shape[2] == 3 and model.b2(trunk).shape[2] == 6


@pytest.mark.usefixtures("require_backbones")
def test_mgn_r50_ibn_parameter_count_matches_the_reference() -> None:
    # FastReID's MGN R50-ibn (GeM-P heads, 256-d, 751 classes): 70.3 M parameters.
    config = mgn_config(
        backbone={"name": "resnet50", "ibn": True},
        pooling={"kind": "gem", "gem": {"learnable": True}},
        neck={"kind": "bn", "embedding": "after", "metric_feature": "after"},
        classifier={"kind": "circle"},
    )
    model = build_model(config, InputConfig(), num_classes=751)
    count = sum(p.numel() for p in model.parameters())
    assert round(count / 1e6, 1) == 70.3
    # Our count, derived block by block: trunk + 3 × (layer3[1:] + layer4) + 8 heads.
    assert count == 70_345_800


@pytest.mark.usefixtures("require_backbones")
def test_mgn_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"model\.neck\.kind"):
        build_model(
            mgn_config(backbone={"name": "resnet18"}, neck={"kind": "linear"}),
            InputConfig(),
            num_classes=3,
        )


def test_forward_scores_gives_every_heads_scores_in_eval_mode(tiny_backbone) -> None:
    model = make_mgn(tiny_backbone).eval()
    x = images(3)
    with torch.no_grad():
        out = model.forward_scores(x)
        assert torch.equal(out.embedding, model(x).embedding)
        model.train()
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        reference = model(x, targets(3))
    assert len(out.class_scores) == len(HEAD_NAMES)
    for mine, theirs in zip(out.class_scores, reference.class_scores, strict=True):
        torch.testing.assert_close(mine, theirs)
