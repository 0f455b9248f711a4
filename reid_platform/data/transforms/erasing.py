"""Random erasing (Zhong et al., 2020) on uint8 images, filled with a constant colour."""

import math

import torch
from torch import Tensor, nn


class RandomErasing(nn.Module):
    """With probability `prob`, set a random rectangle of the image to `fill`.

    The rectangle is drawn as torchvision's `RandomErasing`: area uniform in `scale` × image area,
    aspect ratio (h / w) log-uniform in `ratio`, up to 10 tries to fit it inside the image. This
    version keeps the image in uint8 and samples with few tensor calls: torchvision's takes about
    four times as long on a 256×128 uint8 image, most of it in parameter sampling.

    Args:
        prob: probability of erasing.
        scale: (min, max) erased area as a fraction of the image area.
        ratio: (min, max) aspect ratio of the rectangle.
        fill: the erased pixels' colour, one value per channel in the image's scale (0-255 for
            uint8) — the normalisation mean, so that the rectangle is zero after normalisation.

    Input and output: (C, H, W), any dtype; the input is not modified.
    """

    def __init__(
        self,
        *,
        prob: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        fill: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.prob = prob
        self.scale = scale
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.fill = fill

    def forward(self, image: Tensor) -> Tensor:
        if torch.rand(()).item() >= self.prob:
            return image
        rectangle = self._rectangle(*image.shape[-2:])
        if rectangle is None:
            return image
        top, left, height, width = rectangle
        output = image.clone()
        fill = torch.tensor(self.fill, dtype=image.dtype).view(-1, 1, 1)
        output[..., top : top + height, left : left + width] = fill
        return output

    def _rectangle(self, image_height: int, image_width: int) -> tuple[int, int, int, int] | None:
        """(top, left, height, width) of a rectangle strictly smaller than the image, or None."""
        area = image_height * image_width
        for _ in range(10):
            area_fraction, ratio_fraction, top_fraction, left_fraction = torch.rand(4).tolist()
            erase_area = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * area_fraction)
            log_ratio = self.log_ratio[0] + (self.log_ratio[1] - self.log_ratio[0]) * ratio_fraction
            height = round(math.sqrt(erase_area * math.exp(log_ratio)))
            width = round(math.sqrt(erase_area / math.exp(log_ratio)))
            if height < image_height and width < image_width:
                top = min(int(top_fraction * (image_height - height + 1)), image_height - height)
                left = min(int(left_fraction * (image_width - width + 1)), image_width - width)
                return top, left, height, width
        return None

    def extra_repr(self) -> str:
        return f"prob={self.prob}, scale={self.scale}, fill={self.fill}"
