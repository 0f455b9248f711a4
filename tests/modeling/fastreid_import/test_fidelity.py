"""The config adjustments that make our model compute FastReID's embedding."""

import torch

from reid_platform.modeling.fastreid_import.fidelity import reference_config

NON_LOCAL = {"backbone.NL_2.0.g.weight": torch.zeros(1, 512, 1, 1)}


def test_resnet_gets_the_reference_stem_the_nl_width_and_the_neck_embedding(make_config) -> None:
    config = make_config(
        "model.backbone.non_local=true",
        "model.backbone.pretrained.path=w.pth",
        "input.interpolation=bilinear",
        "model.neck.embedding=before",
    )
    adjusted, notes = reference_config(config, NON_LOCAL)
    backbone = adjusted.model.backbone
    assert backbone.reference_stem and backbone.non_local_inner_channels == 1
    assert backbone.pretrained.path is None
    assert adjusted.model.neck.embedding == "after"
    assert [note.split(":")[0] for note in notes] == [
        "set model.backbone.reference_stem=true",
        "set model.backbone.non_local_inner_channels=1",
        "set model.neck.embedding=after",
        "set input.interpolation=bicubic",
        "set model.backbone.pretrained.path=null",
    ]
    assert adjusted.input.interpolation == "bicubic"
    assert adjusted.model_dump(exclude={"model", "input"}) == config.model_dump(
        exclude={"model", "input"}
    )


def test_resnext_keeps_the_padded_stem_and_settled_configs_are_untouched(make_config) -> None:
    config = make_config(
        "model.backbone.name=resnext50_32x4d",
        "model.backbone.reference_stem=true",
        "model.neck.embedding=after",
    )
    adjusted, notes = reference_config(config, {})
    assert adjusted.model.backbone.reference_stem is False
    assert len(notes) == 1
    assert reference_config(adjusted, {}) == (adjusted, ())
