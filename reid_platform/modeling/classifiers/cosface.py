"""CosFace / large-margin cosine (Wang et al. 2018; the reference's `CosSoftmax`).

Target logit `s·(cos θ_y − m)`, other logits `s·cos θ_j`.
"""

from torch import Tensor

from reid_platform.modeling.classifiers.base import CosineClassifier
from reid_platform.modeling.registry import CLASSIFIERS


@CLASSIFIERS.register("cosface")
class CosFaceClassifier(CosineClassifier):
    """(B, D), targets (B,) → logits `s·(cos − m·onehot)`, scores `s·cos`; (B, K) each."""

    def apply_margin(self, cos: Tensor, is_target: Tensor) -> Tensor:
        return cos - self.margin * is_target.to(cos.dtype)
