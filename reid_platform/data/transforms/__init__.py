"""uint8 image transforms: the training augmentations and the test resize."""

from reid_platform.data.transforms.build import (
    build_test_transform,
    build_train_transform,
    pixel_fill,
)
from reid_platform.data.transforms.cutout import Cutout, cut_out
from reid_platform.data.transforms.erasing import RandomErasing
from reid_platform.data.transforms.pad_crop import RandomPadCrop
from reid_platform.data.transforms.random_patch import RandomPatch, paste_patch

__all__ = [
    "Cutout",
    "RandomErasing",
    "RandomPadCrop",
    "RandomPatch",
    "build_test_transform",
    "build_train_transform",
    "cut_out",
    "paste_patch",
    "pixel_fill",
]
