"""Cutout (DeVries & Taylor, 2017): one square of the image set to a constant colour."""

import torch
from torch import Tensor, nn


def cut_out(image: Tensor, *, center: tuple[int, int], side: int, fill: tuple[int, ...]) -> Tensor:
    """A copy of `image` (C, H, W) with the `side`×`side` square at `center` (y, x) set to `fill`.

    The square is clipped at the image border; `fill` has one value per channel, in the image's
    own scale (0-255 for uint8).
    """
    height, width = image.shape[-2:]
    top, left = center[0] - side // 2, center[1] - side // 2
    rows = slice(max(0, top), min(height, top + side))
    cols = slice(max(0, left), min(width, left + side))
    output = image.clone()
    output[..., rows, cols] = torch.tensor(fill, dtype=image.dtype).view(-1, 1, 1)
    return output


class Cutout(nn.Module):
    """With probability `prob`, cut out a square of side `size_fraction × min(H, W)`.

    The centre is uniform over the image, so the square may be clipped by the border (as the
    original). Fill with the normalisation mean in pixel scale, so that after the model's
    normalisation the square is zero. Input and output: uint8 (C, H, W).
    """

    def __init__(self, *, prob: float, size_fraction: float, fill: tuple[int, ...]) -> None:
        super().__init__()
        self.prob = prob
        self.size_fraction = size_fraction
        self.fill = fill

    def forward(self, image: Tensor) -> Tensor:
        if torch.rand(()).item() >= self.prob:
            return image
        height, width = image.shape[-2:]
        side = max(1, round(self.size_fraction * min(height, width)))
        center_y = int(torch.randint(height, ()).item())
        center_x = int(torch.randint(width, ()).item())
        return cut_out(image, center=(center_y, center_x), side=side, fill=self.fill)
