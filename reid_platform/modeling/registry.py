"""Registries of the model's plug-in points: backbones, poolings, necks and classifier layers."""

from collections.abc import Callable

from torch import nn

from reid_platform.config.registry import Registry

BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")
"""Backbone factories: keyword-only arguments, returning a module (B, 3, H, W) → (B, C, h, w)
with an `out_channels: int` attribute."""

POOLINGS: Registry[Callable[..., nn.Module]] = Registry("pooling")
"""Pooling factories: (B, C, h, w) → (B, C)."""

NECKS: Registry[Callable[..., nn.Module]] = Registry("neck")
"""Neck factories: (B, C) → (B, D), with an `out_features: int` attribute."""

CLASSIFIERS: Registry[Callable[..., nn.Module]] = Registry("classifier")
"""Classifier-layer factories: features (B, D) and optional targets (B,) → (logits, scores)."""
