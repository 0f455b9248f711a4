"""Imported models reproduce FastReID's eval embeddings.

Model A (ours, FastReID's settings, randomised) → FastReID key layout (`to_fastreid`, written
independently of the importer) → import into model B from a config *without* FastReID's
settings → B's embeddings equal A's. Two further oracles do not use our model at all for the
parts they check: a functional FastReID ResNet-18 BoT forward reading the FastReID-named
tensors, and FastReID's preprocessing + GeM + BNNeck computed by hand on top of B's backbone.
"""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from reid_platform.modeling.fastreid_import import CheckpointLayout, import_fastreid_state_dict

TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}
LAYOUTS = ["current", "intermediate", "old"]
SMALL = (64, 32)


def _bn(x: Tensor, state: dict[str, Tensor], prefix: str) -> Tensor:
    return F.batch_norm(
        x,
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        training=False,
        eps=1e-5,
    )


def fastreid_r18_bot_embedding(state: dict[str, Tensor], normalized: Tensor) -> Tensor:
    """FastReID's ResNet-18 BoT eval forward from its own key names: stem with the max-pool of
    padding 0 and ceil_mode, BasicBlocks (last stride 1), global average pooling, BNNeck."""
    x = F.conv2d(normalized, state["backbone.conv1.weight"], stride=2, padding=3)
    x = F.relu(_bn(x, state, "backbone.bn1"))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=0, ceil_mode=True)
    for layer, stride in zip(range(1, 5), (1, 2, 2, 1), strict=True):
        for block in range(2):
            p = f"backbone.layer{layer}.{block}"
            s = stride if block == 0 else 1
            out = F.relu(
                _bn(F.conv2d(x, state[f"{p}.conv1.weight"], stride=s, padding=1), state, f"{p}.bn1")
            )
            out = _bn(F.conv2d(out, state[f"{p}.conv2.weight"], padding=1), state, f"{p}.bn2")
            shortcut = x
            if f"{p}.downsample.0.weight" in state:
                shortcut = F.conv2d(x, state[f"{p}.downsample.0.weight"], stride=s)
                shortcut = _bn(shortcut, state, f"{p}.downsample.1")
            x = F.relu(out + shortcut)
    pooled = x.mean(dim=(2, 3))
    neck = "heads.bnneck" if "heads.bnneck.weight" in state else "heads.bottleneck.0"
    return _bn(pooled, state, neck)


def fastreid_gem_bnneck(feature_map: Tensor, state: dict[str, Tensor], head: str) -> Tensor:
    """FastReID's GeneralizedMeanPoolingP (eps 1e-6) then its BNNeck, from its key names."""
    p = state[f"{head}.pool_layer.p"]
    pooled = feature_map.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)
    if f"{head}.bottleneck.0.weight" in state and state[f"{head}.bottleneck.0.weight"].dim() == 4:
        pooled = F.conv2d(pooled[:, :, None, None], state[f"{head}.bottleneck.0.weight"]).flatten(1)
        return _bn(pooled, state, f"{head}.bottleneck.1")
    neck = f"{head}.bnneck" if f"{head}.bnneck.weight" in state else f"{head}.bottleneck.0"
    return _bn(pooled, state, neck)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_resnet18_bot_round_trip(
    layout, make_config, build, to_fastreid, images, fastreid_normalize
) -> None:
    a = build(make_config("model.backbone.name=resnet18", *_fastreid_resnet()), 10, seed=1)
    state = to_fastreid(a.state_dict(), layout=layout)
    # A config that evaluates the pooled feature: the importer must switch it to the neck output.
    plain = make_config("model.backbone.name=resnet18", "model.neck.embedding=before")
    report = import_fastreid_state_dict(state, plain)
    assert report.layout is CheckpointLayout(layout)
    assert report.num_classes == 10
    assert not report.accounting.unplaced and not report.accounting.missing
    assert {p.source for p in report.accounting.placed} | set(report.accounting.validated) == set(
        state
    )
    x = images(3, SMALL)
    with torch.no_grad():
        expected = a(x).embedding
        got = report.model(x).embedding
        oracle = fastreid_r18_bot_embedding(state, fastreid_normalize(x))
    torch.testing.assert_close(got, expected, **TOLERANCE)
    torch.testing.assert_close(got, oracle, **TOLERANCE)
    assert any("reference_stem=true" in note for note in report.notes)
    assert any("embedding=after" in note for note in report.notes)


def _fastreid_resnet() -> tuple[str, ...]:
    return ("model.backbone.reference_stem=true", "model.neck.embedding=after")


SBS = (
    "model.backbone.ibn=true",
    "model.backbone.non_local=true",
    "model.pooling.kind=gem",
    "model.pooling.gem.learnable=true",
    "model.classifier.kind=circle",
)


@pytest.mark.parametrize("layout", ["current", "old"])
def test_r50_ibn_sbs_non_local_gem_round_trip(
    layout, make_config, build, to_fastreid, images, fastreid_normalize
) -> None:
    fastreid_like = make_config(
        *SBS, *_fastreid_resnet(), "model.backbone.non_local_inner_channels=1"
    )
    a = build(fastreid_like, 10, seed=2)
    state = to_fastreid(a.state_dict(), layout=layout)
    assert state["backbone.NL_2.0.g.weight"].shape == (1, 512, 1, 1)
    report = import_fastreid_state_dict(state, make_config(*SBS))
    b = report.model
    assert report.config.model.backbone.non_local_inner_channels == 1
    assert b.backbone.NL_3[2].inner_channels == 1
    x = images(2, SMALL, seed=5)
    with torch.no_grad():
        got = b(x).embedding
        torch.testing.assert_close(got, a(x).embedding, **TOLERANCE)
        # FastReID's preprocessing by hand, our backbone, FastReID's GeM-P and BNNeck by hand.
        feature_map = b.backbone(fastreid_normalize(x))
        torch.testing.assert_close(
            got, fastreid_gem_bnneck(feature_map, state, "heads"), **TOLERANCE
        )


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["intermediate"])
def test_mgn_round_trip(
    layout, make_config, build, to_fastreid, images, fastreid_normalize
) -> None:
    mgn = ("model.kind=mgn", "model.pooling.kind=gem", "model.pooling.gem.learnable=true")
    size = (96, 32)
    a = build(make_config(*mgn, *_fastreid_resnet(), size=size), 10, seed=3)
    state = to_fastreid(a.state_dict(), layout=layout, mgn=True)
    assert state["b1_head.bottleneck.0.weight"].shape == (256, 2048, 1, 1)
    assert "backbone.6.conv1.weight" in state and "b3.1.2.conv3.weight" in state
    report = import_fastreid_state_dict(state, make_config(*mgn, size=size))
    b = report.model
    x = images(2, size, seed=7)
    with torch.no_grad():
        got = b(x).embedding
        torch.testing.assert_close(got, a(x).embedding, **TOLERANCE)
        # Heads b1 (slice 0) and b21 (slice 3: upper half of b2) by hand from FastReID's keys.
        trunk = b.backbone(fastreid_normalize(x))
        b1 = fastreid_gem_bnneck(b.b1(trunk), state, "b1_head")
        b21 = fastreid_gem_bnneck(torch.chunk(b.b2(trunk), 2, dim=2)[0], state, "b21_head")
    torch.testing.assert_close(got[:, :256], b1, **TOLERANCE)
    torch.testing.assert_close(got[:, 3 * 256 : 4 * 256], b21, **TOLERANCE)
