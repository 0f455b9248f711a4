"""Attention pooling (FastReID paper §3.3, eq. 4): a softmax-weighted mean over positions.

A 1×1 convolution scores every spatial position from its C-channel feature, a softmax over the
h·w positions turns the scores into weights that sum to one, and the pooled feature is the
weighted sum of the position features. One weight map is shared by all channels.

The scoring conv has no bias (a constant shift cancels in the softmax, so it could never learn)
and starts at zero, so a fresh attention pooling is exactly average pooling and learns to
depart from it.
"""

import torch
from torch import Tensor, nn

from reid_platform.modeling.registry import POOLINGS


@POOLINGS.register("attention")
class AttentionPooling(nn.Module):
    """(B, C, h, w) → (B, C): `sum_i softmax(w · x_i) x_i` over the h·w positions i."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.score = nn.Conv2d(channels, 1, kernel_size=1, bias=False)
        nn.init.zeros_(self.score.weight)

    def forward(self, feature_map: Tensor) -> Tensor:
        scores = self.score(feature_map).flatten(2)  # (B, 1, h·w)
        # Softmax in float32: under AMP the exponentials of float16 scores overflow.
        weights = torch.softmax(scores.float(), dim=-1).to(feature_map.dtype)
        return (feature_map.flatten(2) * weights).sum(dim=-1)
