"""Generalised-mean (GeM) pooling with a fixed or learnable exponent (paper §3.3, eq. 3).

`(mean over h·w of clamp(x, eps)^p)^(1/p)`: p = 1 is average pooling, p → ∞ approaches max
pooling. Written as `adaptive_avg_pool2d(...)` rather than a kernel of the input's size, so the
graph holds no shape-dependent constants and exports to ONNX with a dynamic batch. The power is
taken in float32 even under AMP: x^3 of ordinary activations overflows float16.

State dict: a learnable p is the parameter `p` of shape (1,) (the reference's
`pool_layer.p`); a fixed p is a plain attribute and not saved, as in the reference.
"""

import torch
from torch import Tensor, nn
from torch.nn.functional import adaptive_avg_pool2d

from reid_platform.modeling.registry import POOLINGS


@POOLINGS.register("gem")
class GeMPooling(nn.Module):
    """(B, C, h, w) → (B, C) generalised mean with exponent `p` (learnable when `learnable`)."""

    p: Tensor | float

    def __init__(
        self, *, channels: int, p: float = 3.0, learnable: bool = False, eps: float = 1e-6
    ) -> None:
        super().__init__()
        if p < 1.0:
            raise ValueError(f"GeM exponent p must be at least 1, got {p}")
        self.channels = channels
        self.eps = eps
        self.learnable = learnable
        if learnable:
            self.p = nn.Parameter(torch.full((1,), float(p)))
        else:
            self.p = float(p)

    def forward(self, feature_map: Tensor) -> Tensor:
        x = feature_map.float().clamp(min=self.eps).pow(self.p)
        pooled = adaptive_avg_pool2d(x, 1).flatten(1).pow(1.0 / self.p)
        return pooled.to(feature_map.dtype)

    def extra_repr(self) -> str:
        p = float(self.p.item()) if isinstance(self.p, Tensor) else self.p
        return f"p={p:.4g}, learnable={self.learnable}, eps={self.eps}"
