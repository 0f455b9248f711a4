"""Average plus max pooling (the reference's `AdaptiveAvgMaxPool`: the sum, not a concatenation)."""

from torch import Tensor, nn

from reid_platform.modeling.registry import POOLINGS


@POOLINGS.register("avg_max")
class AverageMaxPooling(nn.Module):
    """Spatial mean + spatial max, per channel: (B, C, h, w) → (B, C)."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map.mean(dim=(2, 3)) + feature_map.amax(dim=(2, 3))
