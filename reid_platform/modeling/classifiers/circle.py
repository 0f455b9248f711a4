"""Class-level circle loss logits (Sun et al. 2020; the reference's `CircleSoftmax`).

With optimum O_p = 1 + m, O_n = −m and decision margins Δp = 1 − m, Δn = m:
target logit `s·α_p·(cos − Δp)` with `α_p = relu(1 + m − cos)`,
other logits `s·α_n·(cos − Δn)` with `α_n = relu(cos + m)`.
The weights α are treated as constants in the gradient (detached), as in the paper and the
reference. A target of -1 makes every logit a negative one.
"""

import torch
from torch import Tensor

from reid_platform.modeling.classifiers.base import CosineClassifier
from reid_platform.modeling.registry import CLASSIFIERS


@CLASSIFIERS.register("circle")
class CircleSoftmaxClassifier(CosineClassifier):
    """(B, D), targets (B,) → circle-weighted logits and scores `s·cos`; (B, K) each."""

    def apply_margin(self, cos: Tensor, is_target: Tensor) -> Tensor:
        m = self.margin
        alpha_p = (1.0 + m - cos.detach()).clamp(min=0.0)
        alpha_n = (cos.detach() + m).clamp(min=0.0)
        positive = alpha_p * (cos - (1.0 - m))
        negative = alpha_n * (cos - m)
        return torch.where(is_target, positive, negative)
