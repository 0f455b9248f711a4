"""Linear neck: a learned linear map to `out_features` (with bias), then optional dropout."""

from torch import Tensor, nn

from reid_platform.modeling.registry import NECKS


@NECKS.register("linear")
class LinearNeck(nn.Module):
    """(B, C) → (B, D): `dropout(W x + b)` with D = `out_features`."""

    def __init__(self, *, in_features: int, out_features: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.linear = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: Tensor) -> Tensor:
        out: Tensor = self.dropout(self.linear(features))
        return out
