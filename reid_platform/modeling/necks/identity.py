"""No neck: the pooled feature goes to the classifier unchanged."""

from torch import Tensor, nn

from reid_platform.modeling.registry import NECKS


@NECKS.register("none")
class IdentityNeck(nn.Module):
    """(B, C) → (B, C), unchanged."""

    def __init__(self, *, in_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = in_features

    def forward(self, features: Tensor) -> Tensor:
        return features
