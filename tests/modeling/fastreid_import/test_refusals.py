"""No silent partial loads: each refusal is one sentence naming the culprit."""

import pytest
import torch

from reid_platform.errors import ReidError
from reid_platform.modeling.fastreid_import import PartialLoadError, import_fastreid_state_dict

R18 = ("model.backbone.name=resnet18",)


@pytest.fixture
def r18_state(make_config, build, to_fastreid):
    """`r18_state(layout)` → a FastReID ResNet-18 BoT state dict (10 classes)."""
    model = build(make_config(*R18), 10)
    return lambda layout="current": to_fastreid(model.state_dict(), layout=layout)


def _one_sentence(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    return message


def test_unplaceable_key_is_refused_by_name(r18_state, make_config) -> None:
    state = r18_state()
    state["backbone.extra.weight"] = torch.zeros(3)
    with pytest.raises(PartialLoadError) as refused:
        import_fastreid_state_dict(state, make_config(*R18), source="ckpt.pth")
    message = _one_sentence(refused.value)
    assert message.startswith("refusing a partial load of ckpt.pth: 1 FastReID key")
    assert "backbone.extra.weight" in message
    unplaced = refused.value.accounting.unplaced
    assert [(u.source, u.reason) for u in unplaced] == [
        ("backbone.extra.weight", "our model has no 'backbone.extra.weight'")
    ]


def test_missing_model_key_is_refused_by_name(r18_state, make_config) -> None:
    state = r18_state()
    del state["backbone.layer2.1.bn2.running_var"]
    with pytest.raises(PartialLoadError, match=r"1 model key got no weights \(backbone\.layer2"):
        import_fastreid_state_dict(state, make_config(*R18))


def test_wrong_pixel_mean_is_refused(r18_state, make_config) -> None:
    state = r18_state("old")
    state["pixel_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # not × 255
    with pytest.raises(ReidError) as refused:
        import_fastreid_state_dict(state, make_config(*R18), source="zoo.pth")
    message = _one_sentence(refused.value)
    assert "pixel_mean is [0.485, 0.456, 0.406]" in message and "input.mean" in message


def test_shape_mismatch_names_the_key(r18_state, make_config) -> None:
    state = r18_state()
    state["backbone.layer3.0.bn1.weight"] = torch.ones(7)
    with pytest.raises(
        ReidError, match=r"key 'backbone\.layer3\.0\.bn1\.weight' has shape \(7,\) but our"
    ):
        import_fastreid_state_dict(state, make_config(*R18))


def test_absent_classifier_is_allowed_for_inference(r18_state, make_config, images) -> None:
    full = r18_state()
    headless = {k: v for k, v in full.items() if k != "heads.weight"}
    with_classifier = import_fastreid_state_dict(full, make_config(*R18)).model
    report = import_fastreid_state_dict(headless, make_config(*R18))
    assert report.num_classes == 0
    assert report.accounting.missing == ("head.classifier.weight",)
    assert any("inference only" in note for note in report.notes)
    x = images(2, (64, 32))
    with torch.no_grad():
        torch.testing.assert_close(report.model(x).embedding, with_classifier(x).embedding)


def test_mixed_layouts_are_refused(r18_state, make_config) -> None:
    state = r18_state()
    state["heads.bnneck.weight"] = state["heads.bottleneck.0.weight"].clone()
    with pytest.raises(ReidError, match=r"both map to our 'head\.neck\.bn\.weight'"):
        import_fastreid_state_dict(state, make_config(*R18))


def test_config_mismatch_suggests_overrides(make_config, build, to_fastreid) -> None:
    sbs = (
        "model.backbone.non_local=true",
        "model.pooling.kind=gem",
        "model.pooling.gem.learnable=true",
    )
    state = to_fastreid(
        build(make_config(*sbs, "model.backbone.non_local_inner_channels=1"), 5).state_dict()
    )
    with pytest.raises(PartialLoadError) as refused:
        import_fastreid_state_dict(state, make_config())
    message = _one_sentence(refused.value)
    assert "have no place (backbone.NL_2.0.g.weight" in message
    assert message.endswith(
        "the checkpoint suggests model.backbone.non_local=true "
        "model.pooling.kind=gem model.pooling.gem.learnable=true"
    )


def test_wrong_depth_suggests_the_name(r18_state, make_config) -> None:
    with pytest.raises(PartialLoadError, match=r"suggests model\.backbone\.name=resnet18$"):
        import_fastreid_state_dict(r18_state(), make_config("model.backbone.name=resnet34"))


def test_architecture_mismatch(r18_state, make_config) -> None:
    with pytest.raises(ReidError, match=r"FastReID baseline model .* set model\.kind=baseline"):
        import_fastreid_state_dict(r18_state(), make_config("model.kind=mgn"))


def test_unsupported_backbone(r18_state, make_config) -> None:
    with pytest.raises(ReidError, match="'resnest50' cannot take FastReID weights"):
        import_fastreid_state_dict(r18_state(), make_config("model.backbone.name=resnest50"))
