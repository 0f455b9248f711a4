"""Global max pooling (paper §3.3, eq. 1; the reference's `GlobalMaxPool`)."""

from torch import Tensor, nn

from reid_platform.modeling.registry import POOLINGS


@POOLINGS.register("max")
class MaxPooling(nn.Module):
    """Maximum over all spatial positions: (B, C, h, w) → (B, C)."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map.amax(dim=(2, 3))
