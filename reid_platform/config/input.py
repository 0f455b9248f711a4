"""Input pipeline config: image size, normalisation and training augmentations.

The augmentations run in the reference toolbox's order (see `data/transforms/build.py`):
auto-augment, resize, random resized crop, pad + random crop, flip, colour jitter, affine,
augmix, to-tensor, random erasing, random patch, cutout.
"""

from typing import Literal

from pydantic import Field

from reid_platform.config.base import Float, Section

Interpolation = Literal["bicubic", "bilinear", "nearest"]


class FlipConfig(Section):
    enabled: bool = False
    prob: Float = Field(0.5, ge=0.0, le=1.0)


class PaddingConfig(Section):
    """Pad every side by `size` pixels, then random-crop back to the training size."""

    enabled: bool = False
    size: int = Field(10, ge=0)
    mode: Literal["constant", "edge", "reflect", "symmetric"] = "constant"


class RandomResizedCropConfig(Section):
    """torchvision RandomResizedCrop to the training size (bicubic)."""

    enabled: bool = False
    scale: tuple[Float, Float] = (0.16, 1.0)
    ratio: tuple[Float, Float] = (0.75, 1.3333333333333333)


class ColorJitterConfig(Section):
    enabled: bool = False
    prob: Float = Field(0.5, ge=0.0, le=1.0)
    brightness: Float = Field(0.15, ge=0.0)
    contrast: Float = Field(0.15, ge=0.0)
    saturation: Float = Field(0.1, ge=0.0)
    hue: Float = Field(0.1, ge=0.0, le=0.5)


class AffineConfig(Section):
    """Random affine; the defaults are the reference's fixed values."""

    enabled: bool = False
    prob: Float = Field(1.0, ge=0.0, le=1.0)
    degrees: Float = Field(10.0, ge=0.0)
    translate: tuple[Float, Float] = (0.0, 0.0)
    scale: tuple[Float, Float] = (0.9, 1.1)
    shear: Float = Field(0.1 * 180.0 / 3.141592653589793, ge=0.0)


class AutoAugmentConfig(Section):
    """ImageNet AutoAugment policy, applied with probability `prob`."""

    enabled: bool = False
    prob: Float = Field(0.1, ge=0.0, le=1.0)


class AugMixConfig(Section):
    enabled: bool = False
    prob: Float = Field(0.5, ge=0.0, le=1.0)
    severity: int = Field(1, ge=1, le=10)
    width: int = Field(3, ge=1)
    depth: int = Field(1, ge=-1)
    alpha: Float = Field(0.1, gt=0.0)


class RandomErasingConfig(Section):
    """Random erasing (REA); erased pixels take the normalisation mean unless `value` is given."""

    enabled: bool = False
    prob: Float = Field(0.5, ge=0.0, le=1.0)
    scale: tuple[Float, Float] = (0.02, 0.33)
    ratio: tuple[Float, Float] = (0.3, 3.3)
    value: tuple[Float, Float, Float] | None = None


class RandomPatchConfig(Section):
    """Random patch (OSNet): paste patches cut from earlier images over the current one."""

    enabled: bool = False
    prob: Float = Field(0.5, ge=0.0, le=1.0)
    pool_capacity: int = Field(50000, ge=1)
    min_sample_size: int = Field(100, ge=1)
    area: tuple[Float, Float] = (0.01, 0.5)


class CutoutConfig(Section):
    """Cutout: one square of side `size_fraction × min(H, W)` set to zero (normalised mean)."""

    enabled: bool = False
    prob: Float = Field(0.5, ge=0.0, le=1.0)
    size_fraction: Float = Field(0.5, gt=0.0, le=1.0)


class InputConfig(Section):
    """Image geometry, normalisation (0-255 pixel scale, as the reference) and augmentation."""

    size_train: tuple[int, int] = (256, 128)
    size_test: tuple[int, int] = (256, 128)
    interpolation: Interpolation = "bicubic"
    mean: tuple[Float, Float, Float] = (123.675, 116.28, 103.53)
    std: tuple[Float, Float, Float] = (58.395, 57.12, 57.375)
    autoaugment: AutoAugmentConfig = AutoAugmentConfig()
    crop: RandomResizedCropConfig = RandomResizedCropConfig()
    padding: PaddingConfig = PaddingConfig()
    flip: FlipConfig = FlipConfig()
    color_jitter: ColorJitterConfig = ColorJitterConfig()
    affine: AffineConfig = AffineConfig()
    augmix: AugMixConfig = AugMixConfig()
    random_erasing: RandomErasingConfig = RandomErasingConfig()
    random_patch: RandomPatchConfig = RandomPatchConfig()
    cutout: CutoutConfig = CutoutConfig()
