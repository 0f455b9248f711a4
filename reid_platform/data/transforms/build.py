"""Input config → the training and test transforms (uint8 image in, uint8 image out).

Both transforms take a decoded uint8 image (3, H, W) and return a uint8 image (3, H', W') of the
configured size, NOT normalised: the model carries its mean and std (0-255 scale) and normalises
on the device, which keeps decoding, augmentation and host-to-device copies in 8 bits (a quarter
of the bytes of float32). torchvision's v2 kernels resize uint8 images natively on the CPU.
Pad + random crop and random erasing are our own lean uint8 modules: they are on the hot path of
every BoT-style recipe and torchvision's versions spend most of their time outside the pixels
(see `tests/benchmarks/pipeline_throughput.py`).
"""

from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torchvision.transforms import v2

from reid_platform.config.input import InputConfig, Interpolation
from reid_platform.data.transforms.cutout import Cutout
from reid_platform.data.transforms.erasing import RandomErasing
from reid_platform.data.transforms.pad_crop import RandomPadCrop
from reid_platform.data.transforms.random_patch import RandomPatch

INTERPOLATION_MODES: dict[Interpolation, v2.InterpolationMode] = {
    "bicubic": v2.InterpolationMode.BICUBIC,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "nearest": v2.InterpolationMode.NEAREST,
}


def pixel_fill(values: Sequence[float]) -> tuple[int, ...]:
    """Per-channel fill colour in 0-255 uint8 scale (rounded and clipped), e.g. the mean."""
    return tuple(min(255, max(0, round(value))) for value in values)


def build_train_transform(config: InputConfig) -> Callable[[Tensor], Tensor]:
    """The training augmentations in the reference order; uint8 (3, H, W) → (3, *size_train).

    auto-augment → resize → random resized crop → pad + random crop → flip → colour jitter →
    affine → augmix → random erasing → random patch → cutout, each only when enabled.
    """
    size = list(config.size_train)
    interpolation = INTERPOLATION_MODES[config.interpolation]
    mean_fill = pixel_fill(config.mean)
    steps: list[nn.Module] = []
    if config.autoaugment.enabled:
        autoaugment = v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)
        steps.append(v2.RandomApply([autoaugment], p=config.autoaugment.prob))
    steps.append(v2.Resize(size, interpolation=interpolation, antialias=True))
    if config.crop.enabled:
        crop = config.crop
        steps.append(
            v2.RandomResizedCrop(
                size,
                scale=crop.scale,
                ratio=crop.ratio,
                interpolation=interpolation,
                antialias=True,
            )
        )
    if config.padding.enabled:
        padding = config.padding
        steps.append(RandomPadCrop(size=config.size_train, padding=padding.size, mode=padding.mode))
    if config.flip.enabled:
        steps.append(v2.RandomHorizontalFlip(p=config.flip.prob))
    steps += _photometric_steps(config)
    if config.random_erasing.enabled:
        erasing = config.random_erasing
        value = mean_fill if erasing.value is None else pixel_fill(erasing.value)
        steps.append(
            RandomErasing(prob=erasing.prob, scale=erasing.scale, ratio=erasing.ratio, fill=value)
        )
    if config.random_patch.enabled:
        patch = config.random_patch
        steps.append(
            RandomPatch(
                prob=patch.prob,
                pool_capacity=patch.pool_capacity,
                min_sample_size=patch.min_sample_size,
                area=patch.area,
            )
        )
    if config.cutout.enabled:
        cutout = config.cutout
        steps.append(Cutout(prob=cutout.prob, size_fraction=cutout.size_fraction, fill=mean_fill))
    return v2.Compose(steps)


def _photometric_steps(config: InputConfig) -> list[nn.Module]:
    """Colour jitter, affine and augmix, each wrapped in its `RandomApply` probability."""
    steps: list[nn.Module] = []
    if config.color_jitter.enabled:
        jitter = config.color_jitter
        colour = v2.ColorJitter(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
        steps.append(v2.RandomApply([colour], p=jitter.prob))
    if config.affine.enabled:
        affine = config.affine
        transform = v2.RandomAffine(
            degrees=affine.degrees,
            translate=affine.translate if any(affine.translate) else None,
            scale=affine.scale,
            shear=affine.shear,
            interpolation=v2.InterpolationMode.BILINEAR,
        )
        steps.append(v2.RandomApply([transform], p=affine.prob))
    if config.augmix.enabled:
        augmix = config.augmix
        mix = v2.AugMix(
            severity=augmix.severity,
            mixture_width=augmix.width,
            chain_depth=augmix.depth,
            alpha=augmix.alpha,
        )
        steps.append(v2.RandomApply([mix], p=augmix.prob))
    return steps


def build_test_transform(config: InputConfig) -> Callable[[Tensor], Tensor]:
    """Resize only: uint8 (3, H, W) → uint8 (3, *size_test)."""
    interpolation = INTERPOLATION_MODES[config.interpolation]
    return v2.Compose(
        [v2.Resize(list(config.size_test), interpolation=interpolation, antialias=True)]
    )
