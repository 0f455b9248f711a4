"""Random patch (Zhou et al., OSNet): paste a patch cut from an earlier image onto this one.

The transform keeps a pool of patches cut from the images it has seen; once the pool holds
`min_sample_size` patches it pastes a random one (maybe flipped and slightly rotated) at a random
place, simulating occlusion by other people or objects. Each data-loader worker has its own pool:
with the default capacity of 50 000 patches of up to half a 256×128 image that can reach
gigabytes per worker, so smaller pools are advisable with many workers.
"""

import math
from collections import deque

import torch
from torch import Tensor, nn
from torchvision.transforms.v2.functional import horizontal_flip, rotate


def paste_patch(image: Tensor, patch: Tensor, *, top: int, left: int) -> Tensor:
    """A copy of `image` (C, H, W) with `patch` (C, h, w) pasted with its corner at (top, left)."""
    height, width = patch.shape[-2:]
    output = image.clone()
    output[..., top : top + height, left : left + width] = patch
    return output


class RandomPatch(nn.Module):
    """Collect a random patch from every image; with probability `prob` paste one from the pool.

    Args:
        prob: probability of pasting, once the pool holds `min_sample_size` patches.
        pool_capacity: patches kept (the oldest are dropped first).
        min_sample_size: patches collected before any is pasted.
        area: (min, max) patch area as a fraction of the image area.
        min_aspect_ratio: patch height / width lies in [min_aspect_ratio, 1 / min_aspect_ratio].
        prob_flip: probability of flipping a pasted patch left-right.
        prob_rotate: probability of rotating a pasted patch by a random angle in [-10°, 10°].

    Input and output: uint8 (C, H, W).
    """

    def __init__(
        self,
        *,
        prob: float = 0.5,
        pool_capacity: int = 50000,
        min_sample_size: int = 100,
        area: tuple[float, float] = (0.01, 0.5),
        min_aspect_ratio: float = 0.1,
        prob_flip: float = 0.5,
        prob_rotate: float = 0.5,
    ) -> None:
        super().__init__()
        self.prob = prob
        self.min_sample_size = min_sample_size
        self.area = area
        self.min_aspect_ratio = min_aspect_ratio
        self.prob_flip = prob_flip
        self.prob_rotate = prob_rotate
        self.pool: deque[Tensor] = deque(maxlen=pool_capacity)

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        size = self._patch_size(height, width)
        if size is not None:
            top = _uniform_int(0, height - size[0])
            left = _uniform_int(0, width - size[1])
            self.pool.append(image[..., top : top + size[0], left : left + size[1]].clone())
        if len(self.pool) < self.min_sample_size or torch.rand(()).item() >= self.prob:
            return image
        patch = self.pool[_uniform_int(0, len(self.pool) - 1)]
        patch_height, patch_width = patch.shape[-2:]
        if patch_height > height or patch_width > width:  # cut from a larger image
            return image
        top = _uniform_int(0, height - patch_height)
        left = _uniform_int(0, width - patch_width)
        return paste_patch(image, self._jitter(patch), top=top, left=left)

    def _patch_size(self, height: int, width: int) -> tuple[int, int] | None:
        """(h, w) of a patch of random area and aspect that fits strictly inside the image."""
        for _ in range(100):
            area = _uniform(*self.area) * height * width
            # Linear in [r, 1/r] as the original, which favours tall patches (r = 0.1: 90 %).
            aspect = _uniform(self.min_aspect_ratio, 1.0 / self.min_aspect_ratio)
            patch_height = round(math.sqrt(area * aspect))
            patch_width = round(math.sqrt(area / aspect))
            if 0 < patch_height < height and 0 < patch_width < width:
                return patch_height, patch_width
        return None

    def _jitter(self, patch: Tensor) -> Tensor:
        if torch.rand(()).item() < self.prob_flip:
            patch = horizontal_flip(patch)
        if torch.rand(()).item() < self.prob_rotate:
            patch = rotate(patch, angle=float(_uniform_int(-10, 10)))
        return patch


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * torch.rand(()).item()


def _uniform_int(low: int, high: int) -> int:
    """An integer in [low, high], both included, from torch's generator."""
    return int(torch.randint(low, high + 1, ()).item())
