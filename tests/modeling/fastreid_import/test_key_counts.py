"""The reference's verified key schemes (notes §4.2): counts, parameters and sample shapes.

Our models have exactly FastReID's key counts: the pixel mean/std buffers are non-persistent on
both sides (so absent from both state dicts) and our BNNeck's `BatchNorm1d` saves the same five
entries as FastReID's `BatchNorm2d`; the IBN instance-norm halves have no running statistics in
either. Every FastReID key of these layouts is placed by the importer.
"""

import pytest
import torch

from reid_platform.modeling.fastreid_import import import_fastreid_state_dict

FULL = (256, 128)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _import_all(state, config) -> None:
    report = import_fastreid_state_dict(state, config)
    assert len(report.accounting.placed) == len(state)
    assert report.accounting.complete


def test_bot_r50_ibn_751_classes(make_config, build, to_fastreid) -> None:
    fastreid_like = ("model.backbone.ibn=true", "model.backbone.reference_stem=true")
    model = build(make_config(*fastreid_like, size=FULL), 751)
    state = to_fastreid(model.state_dict())
    assert len(model.state_dict()) == len(state) == 350
    assert _params(model) == 25_050_176
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    assert shapes["backbone.conv1.weight"] == (64, 3, 7, 7)
    for layer, half in ((1, 32), (2, 64), (3, 128)):
        assert shapes[f"backbone.layer{layer}.0.bn1.IN.weight"] == (half,)
        assert shapes[f"backbone.layer{layer}.0.bn1.BN.running_var"] == (half,)
        assert f"backbone.layer{layer}.0.bn1.IN.running_mean" not in shapes
    assert shapes["backbone.layer4.2.bn1.weight"] == (512,)  # plain BN in layer4
    assert shapes["backbone.layer4.0.downsample.0.weight"] == (2048, 1024, 1, 1)
    assert shapes["heads.bottleneck.0.weight"] == (2048,)
    assert shapes["heads.weight"] == (751, 2048)
    assert "pixel_mean" not in shapes
    _import_all(state, make_config("model.backbone.ibn=true", size=FULL))


def test_sbs_r50_ibn(make_config, build, to_fastreid) -> None:
    sbs = (
        "model.backbone.ibn=true",
        "model.backbone.non_local=true",
        "model.pooling.kind=gem",
        "model.pooling.gem.learnable=true",
        "model.classifier.kind=circle",
    )
    model = build(make_config(*sbs, "model.backbone.non_local_inner_channels=1", size=FULL), 751)
    state = to_fastreid(model.state_dict())
    assert len(state) == 416
    assert _params(model) == 25_078_864
    assert state["heads.pool_layer.p"].shape == (1,)
    non_local = {key.split(".")[1] + "." + key.split(".")[2] for key in state if ".NL_" in key}
    assert non_local == {"NL_2.0", "NL_2.1", "NL_3.0", "NL_3.1", "NL_3.2"}
    assert state["backbone.NL_2.1.g.weight"].shape == (1, 512, 1, 1)
    assert state["backbone.NL_3.0.theta.bias"].shape == (1,)
    assert state["backbone.NL_3.2.W.0.weight"].shape == (1024, 1, 1, 1)
    assert state["backbone.NL_3.2.W.1.running_var"].shape == (1024,)
    _import_all(state, make_config(*sbs, size=FULL))


@pytest.mark.slow
def test_mgn_r50_ibn(make_config, build, to_fastreid) -> None:
    mgn = (
        "model.kind=mgn",
        "model.backbone.ibn=true",
        "model.pooling.kind=gem",
        "model.pooling.gem.learnable=true",
    )
    model = build(make_config(*mgn, size=(384, 128)), 751)
    state = to_fastreid(model.state_dict(), mgn=True)
    assert len(state) == 728
    assert round(_params(model) / 1e6, 1) == 70.3
    assert {key.split(".")[1] for key in state if key.startswith("backbone.")} == {
        "0",
        "1",
        "4",
        "5",
        "6",
    }
    assert state["b33_head.bottleneck.0.weight"].shape == (256, 2048, 1, 1)
    assert state["b33_head.bottleneck.1.running_mean"].shape == (256,)
    assert state["b21_head.weight"].shape == (751, 256)
    _import_all(state, make_config(*mgn, size=(384, 128)))
