"""Triplet loss composed of a distance and a miner, with a fixed or a soft margin."""

from torch import Tensor, nn
from torch.nn.functional import relu, softplus

from reid_platform.losses.distances import Distance
from reid_platform.losses.miners import Miner
from reid_platform.losses.pairs import check_batch, mean_over_valid


class TripletLoss(nn.Module):
    """Mean over anchors of a margin rule applied to the mined (d_ap, d_an).

    - fixed margin m: relu(d_ap − d_an + m), which is `margin_ranking_loss(d_an, d_ap, 1, m)`;
    - soft margin (`margin=None`): softplus(d_ap − d_an) = log(1 + exp(d_ap − d_an)), computed
      stably, so the reference's fallback to margin 0.3 when its soft margin overflows to Inf is
      not needed.

    The mean runs over anchors that have a positive and a negative in the batch; others are left
    out, and a batch with none (one identity, or one image per identity) gives 0 with a graph.

    Args:
        distance: pairwise distance of the features, e.g. `EuclideanDistance()`; wrap it in
            `NormalizedDistance` for L2-normalised features.
        miner: `BatchHardMiner()` or `WeightedMiner()`.
        margin: the fixed margin m ≥ 0, or None for the soft margin.
    """

    def __init__(self, *, distance: Distance, miner: Miner, margin: float | None) -> None:
        super().__init__()
        if margin is not None and margin < 0:
            raise ValueError(f"the triplet margin must be >= 0 or None (soft), got {margin}")
        self.distance = distance
        self.miner = miner
        self.margin = margin

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        """features: (N, D) metric features; targets: (N,) identity labels → scalar loss."""
        check_batch(features, targets)
        mined = self.miner(self.distance(features, features), targets)
        gap = mined.positive - mined.negative
        per_anchor = softplus(gap) if self.margin is None else relu(gap + self.margin)
        return mean_over_valid(per_anchor, mined.valid)

    def extra_repr(self) -> str:
        margin = "soft" if self.margin is None else f"{self.margin:g}"
        return f"distance={self.distance!r}, miner={self.miner!r}, margin={margin}"
