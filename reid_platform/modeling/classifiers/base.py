"""What the margin-softmax classifiers share: cosine similarities to class centres and the
target mask.

As in the reference (`heads.weight`, init N(0, 0.01)), the layer holds one centre per class,
`weight: (num_classes, D)`; logits compare the L2-normalised feature with each normalised
centre, so cos ∈ [-1, 1], and `scale` s stretches them for the softmax. Targets of -1 (an
identity without a centre here, as in the reference's model-parallel classifier) get no margin:
every class is treated as a negative.
"""

import torch
from torch import Tensor, nn
from torch.nn.functional import linear, normalize

CLASS_CENTRE_INIT_STD = 0.01


def target_mask(targets: Tensor, num_classes: int) -> Tensor:
    """(B, num_classes) bool: True at each row's target class; all False for a target of -1."""
    classes = torch.arange(num_classes, device=targets.device)
    return targets.unsqueeze(1) == classes


class CosineClassifier(nn.Module):
    """Base of the margin layers: `forward` gives (s·margin(cos, target), s·cos).

    Subclasses implement `apply_margin(cos, is_target) -> (B, num_classes)`, the margin-adjusted
    cosine before scaling.
    """

    def __init__(self, *, in_features: int, num_classes: int, scale: float, margin: float) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if margin < 0:
            raise ValueError(f"margin must be non-negative, got {margin}")
        self.in_features = in_features
        self.num_classes = num_classes
        self.scale = scale
        self.margin = margin
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=CLASS_CENTRE_INIT_STD)

    def cosine(self, features: Tensor) -> Tensor:
        """(B, D) → (B, num_classes) cosine similarity to every class centre."""
        return linear(normalize(features, dim=1), normalize(self.weight, dim=1))

    def apply_margin(self, cos: Tensor, is_target: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, features: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """features: (B, D); targets: (B,) class indices or -1 → (logits, scores), (B, K) each."""
        cos = self.cosine(features)
        scores = cos * self.scale
        if targets is None:
            return scores, scores
        logits = self.apply_margin(cos, target_mask(targets, self.num_classes)) * self.scale
        return logits, scores

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, "
            f"scale={self.scale}, margin={self.margin}"
        )
