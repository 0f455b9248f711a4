"""Pad + random crop back to size (the reference's `Pad` then `RandomCrop`), fused."""

from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.transforms.v2.functional import crop_image, pad_image

PaddingMode = Literal["constant", "edge", "reflect", "symmetric"]


class RandomPadCrop(nn.Module):
    """Pad every side by `padding` pixels, then crop a random `size` (H, W) window.

    Same result as torchvision's `Pad(padding, padding_mode=mode)` + `RandomCrop(size)`. With
    zero (`constant`) padding no padded copy is made: the window's part inside the image is
    copied into a zero canvas of the input's memory layout, several times faster than padding
    first (which also converts channels-last uint8 input to planar, a slow copy).
    Input and output: uint8 (C, H, W) → (C, *size).
    """

    def __init__(self, *, size: tuple[int, int], padding: int, mode: PaddingMode = "constant"):
        super().__init__()
        if padding < 0:
            raise ValueError(f"padding must be non-negative, got {padding}")
        self.size = size
        self.padding = padding
        self.mode = mode

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        pad = self.padding
        top = int(torch.randint(0, max(0, height + 2 * pad - self.size[0]) + 1, ()).item())
        left = int(torch.randint(0, max(0, width + 2 * pad - self.size[1]) + 1, ()).item())
        if self.mode == "constant":
            return crop_with_zeros(image, top=top - pad, left=left - pad, size=self.size)
        padded = pad_image(image, [pad], padding_mode=self.mode)
        return crop_image(padded, top, left, *self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}, mode={self.mode}"


def crop_with_zeros(image: Tensor, *, top: int, left: int, size: tuple[int, int]) -> Tensor:
    """The `size` window of `image` (C, H, W) at (top, left), zero where it leaves the image.

    The output keeps the input's memory layout: copying between channels-last and planar uint8
    layouts costs more than the whole crop.
    """
    channels, height, width = image.shape
    if image.stride(0) == 1 and channels > 1:  # channels-last strides, as decoders produce
        output = image.new_zeros((*size, channels)).permute(2, 0, 1)
    else:
        output = image.new_zeros((channels, *size))
    rows = slice(max(0, top), min(height, top + size[0]))
    cols = slice(max(0, left), min(width, left + size[1]))
    if rows.start < rows.stop and cols.start < cols.stop:
        output[..., rows.start - top : rows.stop - top, cols.start - left : cols.stop - left] = (
            image[..., rows, cols]
        )
    return output
