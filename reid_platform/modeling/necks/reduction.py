"""Reduction head (paper §3.4, Fig. 3): 1×1 conv to a lower width + BN + ReLU + dropout.

On a pooled (B, C) vector a 1×1 conv is a bias-free linear map (the BN's shift makes a bias
redundant); e.g. 2048 → 512 for a smaller embedding.
"""

from torch import Tensor, nn

from reid_platform.modeling.registry import NECKS


@NECKS.register("reduction")
class ReductionNeck(nn.Module):
    """(B, C) → (B, D): `dropout(relu(bn(W x)))` with D = `out_features`.

    The output is non-negative (after the ReLU); the BN here trains its bias, unlike BNNeck.
    """

    def __init__(self, *, in_features: int, out_features: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.projection = nn.Linear(in_features, out_features, bias=False)
        self.bn = nn.BatchNorm1d(out_features)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: Tensor) -> Tensor:
        out: Tensor = self.dropout(self.relu(self.bn(self.projection(features))))
        return out
