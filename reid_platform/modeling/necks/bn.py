"""BNNeck (Luo et al., "Bag of Tricks"; the reference's `WITH_BNNECK`): batch norm, bias frozen.

The BN's bias stays at zero and is excluded from training (`requires_grad=False`), its weight
starts at one: a fresh neck only whitens with the running statistics. With `out_features`
given, a bias-free projection to that width comes first — the reference's `EMBEDDING_DIM > 0`
(a 1×1 conv on the pooled (B, C, 1, 1) map, here the equivalent linear map on (B, C); a
checkpoint importer reshapes its (D, C, 1, 1) weight to (D, C)). MGN's heads use that form.
"""

from torch import Tensor, nn

from reid_platform.modeling.registry import NECKS


@NECKS.register("bn")
class BNNeck(nn.Module):
    """(B, C) → (B, D): optional bias-free projection to D = `out_features`, then frozen-bias BN.

    Without `out_features`, D = C and the neck is the BN alone.
    """

    def __init__(self, *, in_features: int, out_features: int | None = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = in_features if out_features is None else out_features
        self.projection: nn.Module = (
            nn.Identity()
            if out_features is None
            else nn.Linear(in_features, out_features, bias=False)
        )
        self.bn = nn.BatchNorm1d(self.out_features)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)

    def forward(self, features: Tensor) -> Tensor:
        out: Tensor = self.bn(self.projection(features))
        return out
