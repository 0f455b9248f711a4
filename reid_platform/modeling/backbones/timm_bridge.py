"""Any timm model as a backbone: `model.backbone.name: timm:<name>` (e.g. `timm:efficientnet_b0`).

The model is created with `features_only=True, out_indices=(-1,)` and its last feature map is
the output, so every timm CNN with a feature-extraction mode works (MobileNet, EfficientNet,
RegNet, ConvNeXt, ResNet variants, ...).

ViT-like models: timm gives transformers a feature mode too (`forward_intermediates`): the patch
tokens of the last block are reshaped to a (B, C, H / p, W / p) map for patch size p. The class
token and the final LayerNorm are not used, and the position embedding is interpolated to the
input size at run time (`dynamic_img_size=True`), so any input size divisible by p works. This
differs from FastReID's ViT backbone, which returns the class token as (B, C, 1, 1) after the
final norm; pooling the patch map (avg or GeM) is the closest equivalent here.

`last_stride`: 2 keeps the model's native output stride; 1 halves it through timm's
`output_stride` (the last stage is dilated instead of strided), which CNNs support and
transformers do not (a `ConfigError`). IBN, SE, non-local blocks and the reference stem are not
available for timm models (`build_backbone` rejects them).
"""

import inspect
import logging
from typing import Any, cast

import timm
import torch
from torch import Tensor, nn

from reid_platform.config.registry import close_matches
from reid_platform.errors import ConfigError

logger = logging.getLogger(__name__)

_TIMM_ERRORS = (RuntimeError, TypeError, ValueError, AssertionError, NotImplementedError, KeyError)


class TimmBackbone(nn.Module):
    """The last feature map of a timm feature-extraction model.

    x: (B, 3, H, W) → (B, out_channels, H / reduction, W / reduction). `body` is the timm model
    (its state-dict keys are timm's, under `body.`).
    """

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body
        feature_info: Any = cast(Any, body).feature_info
        self.out_channels: int = int(feature_info.channels()[-1])
        self.reduction: int = int(feature_info.reduction()[-1])

    def forward(self, x: Tensor) -> Tensor:
        features: list[Tensor] = self.body(x)
        return features[-1]


def _check_known(name: str) -> None:
    if not timm.is_model(name):
        matches = close_matches(name, timm.list_models())
        hint = (
            " (did you mean " + " or ".join(f"'timm:{m}'" for m in matches) + "?)"
            if matches
            else ""
        )
        raise ConfigError(f"unknown timm model 'timm:{name}'{hint}")


def _native_layout(name: str) -> tuple[int | None, bool]:
    """(output stride of the last feature map or None if unknown, whether it is ViT-like).

    Built on the meta device (no memory, no weight init) where the constructor allows it; some
    compute with tensors while building (timm's RegNet calls `torch.unique`, which has no meta
    kernel in torch 2.11), and those are built on the CPU.
    """
    try:
        with torch.device("meta"):
            probe = timm.create_model(name, pretrained=False)
    except NotImplementedError:
        probe = timm.create_model(name, pretrained=False)
    feature_info = getattr(probe, "feature_info", None)
    reduction = int(feature_info[-1]["reduction"]) if feature_info else None
    vit_like = "dynamic_img_size" in inspect.signature(type(probe).__init__).parameters
    return reduction, vit_like


def timm_backbone(
    name: str,
    *,
    last_stride: int = 1,
    pretrained_state_dict: dict[str, Tensor] | None = None,
) -> TimmBackbone:
    """The timm model `name` (an architecture, optionally with a `.tag`) as a backbone.

    `pretrained_state_dict`: the model's own (classification) weights, loaded by timm's adapter
    (classifier dropped, position embeddings resampled where needed); a mismatch is a
    `ConfigError`.
    """
    _check_known(name)
    native_stride, vit_like = _native_layout(name)
    kwargs: dict[str, Any] = {"features_only": True, "out_indices": (-1,), "num_classes": 0}
    if vit_like:
        kwargs["dynamic_img_size"] = True
    if last_stride == 1:
        if vit_like or native_stride is None or native_stride < 4:
            raise ConfigError(
                f"timm:{name} has no last-stage stride to remove; "
                "set model.backbone.last_stride=2 (the model's native stride)"
            )
        kwargs["output_stride"] = native_stride // 2
    what = f"timm:{name} with {', '.join(f'{k}={v}' for k, v in kwargs.items())}"
    if pretrained_state_dict is not None:
        kwargs["pretrained"] = True
        kwargs["pretrained_cfg_overlay"] = {"state_dict": pretrained_state_dict}
        what += " and the given pretrained weights"
    try:
        body = timm.create_model(name, **kwargs)
    except _TIMM_ERRORS as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        reason = reason if len(reason) <= 240 else reason[:237] + "..."
        raise ConfigError(f"cannot build {what}: {reason}") from error
    backbone = TimmBackbone(body)
    if last_stride == 1 and native_stride is not None and backbone.reduction != native_stride // 2:
        raise ConfigError(
            f"timm:{name} ignored output_stride={native_stride // 2}; "
            "set model.backbone.last_stride=2"
        )
    return backbone
