"""Clipped global average pooling (the reference's `ClipGlobalAvgPool`).

The reference averages first and clamps the *pooled* value to [0, 1] (it does not clip the
activations before averaging); `max_value` generalises its fixed upper bound of 1.
"""

from torch import Tensor, nn

from reid_platform.modeling.registry import POOLINGS


@POOLINGS.register("clipped_avg")
class ClippedAveragePooling(nn.Module):
    """Spatial mean, then clamped to [0, max_value]: (B, C, h, w) → (B, C).

    Channels whose mean falls outside the range pass no gradient back, as in the reference.
    """

    def __init__(self, *, channels: int, max_value: float = 1.0) -> None:
        super().__init__()
        if max_value <= 0:
            raise ValueError(f"max_value must be positive, got {max_value}")
        self.channels = channels
        self.max_value = max_value

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map.mean(dim=(2, 3)).clamp(min=0.0, max=self.max_value)

    def extra_repr(self) -> str:
        return f"max_value={self.max_value}"
