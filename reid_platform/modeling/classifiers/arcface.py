"""ArcFace / additive angular margin (Deng et al. 2019; the reference's `ArcSoftmax`).

Target logit `s·cos(θ_y + m)`, other logits `s·cos θ_j`, with θ the angle between the
normalised feature and the class centre.

Numerics, and where we depart from the reference:

- cos(θ + m) is computed as `cos θ·cos m − sin θ·sin m` with `sin θ = sqrt(max(1 − cos², ε))`.
  The reference takes `acos` in place, which gives NaN when rounding pushes |cos| past 1 and an
  infinite gradient at |cos| = 1.
- Past θ = π − m, cos(θ + m) *rises* again as θ grows, so the "margin" would reward pushing the
  feature away from its own class. There we use `cos θ − (1 − cos m)` instead: a CosFace-style
  penalty that equals cos(θ + m) = −1 at θ = π − m (continuous) and keeps decreasing to θ = π.
  The reference has no such guard; it only matters for a sample nearly opposite its centre.
"""

import math

import torch
from torch import Tensor

from reid_platform.modeling.classifiers.base import CosineClassifier
from reid_platform.modeling.registry import CLASSIFIERS

_SIN_EPS = 1e-12


@CLASSIFIERS.register("arcface")
class ArcFaceClassifier(CosineClassifier):
    """(B, D), targets (B,) → logits `s·cos(θ + m·onehot)` (guarded past π − m), scores `s·cos`."""

    def apply_margin(self, cos: Tensor, is_target: Tensor) -> Tensor:
        cos = cos.clamp(-1.0, 1.0)
        sin = (1.0 - cos * cos).clamp(min=_SIN_EPS).sqrt()
        cos_m, sin_m = math.cos(self.margin), math.sin(self.margin)
        shifted = cos * cos_m - sin * sin_m  # cos(θ + m)
        # θ > π − m  ⇔  cos θ < cos(π − m) = −cos m
        target = torch.where(cos > -cos_m, shifted, cos - (1.0 - cos_m))
        return torch.where(is_target, target, cos)
