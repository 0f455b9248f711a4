"""Global average pooling (paper §3.3, eq. 2; the reference's default `GlobalAvgPool`)."""

from torch import Tensor, nn

from reid_platform.modeling.registry import POOLINGS


@POOLINGS.register("avg")
class AveragePooling(nn.Module):
    """Mean over all spatial positions: (B, C, h, w) → (B, C)."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map.mean(dim=(2, 3))
