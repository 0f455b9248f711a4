"""Config adjustments that make our model compute what FastReID's model computes.

Applied by the importer on top of the user's config, each reported as a note when it changes a
value:

- `model.backbone.reference_stem`: FastReID's ResNet stem max-pool has `padding=0,
  ceil_mode=True` (true for ResNet); its ResNeXt uses torchvision's padded one (false);
- `model.backbone.non_local_inner_channels`: the width found in the checkpoint's non-local
  `g.weight` (1 for every FastReID checkpoint, its constructor's quirk);
- `model.neck.embedding=after`: FastReID always evaluates the post-neck feature;
- `input.interpolation=bicubic`: FastReID's test-time resize (PIL bicubic);
- `model.backbone.pretrained.{path,cache_dir}=null`: every backbone weight comes from the
  checkpoint, so no ImageNet file is looked up.
"""

from collections.abc import Mapping

from torch import Tensor

from reid_platform.config import ReidConfig, config_from_mapping
from reid_platform.errors import ReidError
from reid_platform.modeling.fastreid_import.layouts import non_local_inner_channels

SUPPORTED_BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x4d",
)
"""Backbones whose FastReID key layout ours reproduces."""


def _overrides(config: ReidConfig, state: Mapping[str, Tensor]) -> list[tuple[str, str]]:
    """(space-separated dotted overrides, why) for settings that differ from FastReID's."""
    backbone = config.model.backbone
    wanted: list[tuple[str, str]] = []
    reference_stem = backbone.name.startswith("resnet")
    if backbone.reference_stem != reference_stem:
        why = (
            "FastReID's ResNet stem max-pool has padding 0 and ceil_mode"
            if reference_stem
            else "FastReID's ResNeXt stem uses torchvision's padded max-pool"
        )
        wanted.append((f"model.backbone.reference_stem={str(reference_stem).lower()}", why))
    inner = non_local_inner_channels(state)
    if inner is not None and backbone.non_local_inner_channels != inner:
        why = f"the checkpoint's non-local blocks have {inner} inner channel(s)"
        wanted.append((f"model.backbone.non_local_inner_channels={inner}", why))
    if config.model.neck.embedding != "after":
        wanted.append(("model.neck.embedding=after", "FastReID evaluates the post-neck feature"))
    if config.input.interpolation != "bicubic":
        wanted.append(("input.interpolation=bicubic", "FastReID resizes test images bicubically"))
    pretrained = [
        f"model.backbone.pretrained.{name}=null"
        for name in ("path", "cache_dir")
        if getattr(backbone.pretrained, name) is not None
    ]
    if pretrained:
        why = "the checkpoint supplies every backbone weight, so no ImageNet file is read"
        wanted.append((" ".join(pretrained), why))
    return wanted


def reference_config(
    config: ReidConfig, state: Mapping[str, Tensor]
) -> tuple[ReidConfig, tuple[str, ...]]:
    """`config` adjusted to FastReID's behaviour for `state`, and one note per changed setting.

    Raises `ReidError` for a backbone whose FastReID layout we do not reproduce.
    """
    name = config.model.backbone.name
    if name not in SUPPORTED_BACKBONES:
        raise ReidError(
            f"model.backbone.name={name!r} cannot take FastReID weights; the importer supports "
            f"{', '.join(SUPPORTED_BACKBONES)}"
        )
    wanted = _overrides(config, state)
    if not wanted:
        return config, ()
    overrides = [override for group, _ in wanted for override in group.split()]
    adjusted = config_from_mapping(config.model_dump(mode="json"), overrides)
    return adjusted, tuple(f"set {override}: {why}" for override, why in wanted)
