"""Embedded dot-product non-local block (Wang et al., 2018) with FastReID's module names."""

import torch
from torch import Tensor, nn


class NonLocalBlock(nn.Module):
    """z = x + W(y), y_i = (1/N) Σ_j θ(x_i)·φ(x_j) g(x_j) over the N = H·W positions.

    `g`, `theta` and `phi` are 1×1 convolutions C → `inner_channels`; `W` is
    `Sequential(Conv2d(inner_channels, C, 1), BatchNorm2d(C))` whose BN weight and bias start at
    zero, so the block starts as the identity while every parameter still receives a gradient
    (the BN weight at once, the others after its first update). The keys (`g.weight`,
    `theta.bias`, `W.0.weight`, `W.1.running_var`, ...) match FastReID's `Non_local`.

    `inner_channels` defaults to C // 2 (the paper); FastReID's checkpoints use 1 because of a
    quirk in its constructor, so importing them needs `inner_channels=1`.

    The dot products are normalised by N (no softmax), so the product is associative and the
    block computes whichever of (θᵀφ)g or θᵀ(φgᵀ) is cheaper: the (B, N, N) affinity matrix is
    only formed when N ≤ inner_channels.

    x: (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, channels: int, *, inner_channels: int | None = None) -> None:
        super().__init__()
        inner = channels // 2 if inner_channels is None else inner_channels
        if inner < 1:
            raise ValueError(f"non-local inner channels must be ≥ 1, got {inner}")
        self.inner_channels = inner
        self.g = nn.Conv2d(channels, inner, kernel_size=1)
        self.theta = nn.Conv2d(channels, inner, kernel_size=1)
        self.phi = nn.Conv2d(channels, inner, kernel_size=1)
        output_norm = nn.BatchNorm2d(channels)
        nn.init.zeros_(output_norm.weight)
        nn.init.zeros_(output_norm.bias)
        self.W = nn.Sequential(nn.Conv2d(inner, channels, kernel_size=1), output_norm)

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        positions = height * width
        theta = self.theta(x).flatten(2)  # (B, I, N)
        # Dividing by N before any product keeps the sums over positions at the scale of an
        # average, which matters in float16.
        phi = self.phi(x).flatten(2) / positions  # (B, I, N)
        g = self.g(x).flatten(2)  # (B, I, N)
        if positions > self.inner_channels:
            # (B, I, I) summary of all positions first: O(N·I²) instead of O(N²·I).
            context = torch.bmm(phi, g.transpose(1, 2))  # (B, I_phi, I_g)
            y = torch.bmm(context.transpose(1, 2), theta)  # (B, I_g, N)
        else:
            affinity = torch.bmm(theta.transpose(1, 2), phi)  # (B, N_i, N_j)
            y = torch.bmm(g, affinity.transpose(1, 2))  # (B, I_g, N_i)
        return x + self.W(y.reshape(batch, self.inner_channels, height, width))
