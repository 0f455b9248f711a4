"""Plain linear classifier (the reference's `Linear` layer): logits = x Wᵀ, no bias, no margin."""

import torch
from torch import Tensor, nn
from torch.nn.functional import linear

from reid_platform.modeling.classifiers.base import CLASS_CENTRE_INIT_STD
from reid_platform.modeling.registry import CLASSIFIERS


@CLASSIFIERS.register("linear")
class LinearClassifier(nn.Module):
    """(B, D) → (logits, scores), both (B, num_classes) and equal: `x Wᵀ` with W ~ N(0, 0.01)."""

    def __init__(self, *, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=CLASS_CENTRE_INIT_STD)

    def forward(self, features: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """`targets` is accepted for a uniform interface and ignored (no margin)."""
        logits = linear(features, self.weight)
        return logits, logits

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"
