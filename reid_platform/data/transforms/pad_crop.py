"""Pad + random crop back to size (the reference's `Pad` then `RandomCrop`), fused."""

from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.transforms.v2.functional import crop_image, pad_image

PaddingMode = Literal["constant", "edge", "reflect", "symmetric"]


class RandomPadCrop(nn.Module):
    """Pad every side by `padding` pixels, then crop a random `size` (H, W) window.

    Same result as torchvision's `Pad(padding, padding_mode=mode)` + `RandomCrop(size)`, but with
    zero (`constant`) padding no padded copy is made: the window is cut from the image and only
    its part outside the image is filled, which halves the cost of this step. Input and output:
    uint8 (C, H, W) → (C, *size).
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
        if self.mode == "constant":  # crop_image fills the part outside the image with zeros
            return crop_image(image, top - pad, left - pad, *self.size)
        padded = pad_image(image, [pad], padding_mode=self.mode)
        return crop_image(padded, top, left, *self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}, mode={self.mode}"
