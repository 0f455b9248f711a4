"""`build_train_transform` / `build_test_transform`: shapes, dtype, determinism, resize, erasing."""

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from reid_platform.config.input import InputConfig
from reid_platform.data.transforms import build_test_transform, build_train_transform

AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "autoaugment": {"enabled": True, "prob": 1.0},
    "crop": {"enabled": True},
    "padding": {"enabled": True, "size": 10},
    "flip": {"enabled": True},
    "color_jitter": {"enabled": True, "prob": 1.0},
    "affine": {"enabled": True},
    "augmix": {"enabled": True, "prob": 1.0},
    "random_erasing": {"enabled": True, "prob": 1.0},
    "random_patch": {"enabled": True, "prob": 1.0, "min_sample_size": 2},
    "cutout": {"enabled": True, "prob": 1.0},
}


def input_config(**sections: Any) -> InputConfig:
    return InputConfig.model_validate(sections)


def smooth_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """uint8 (3, H, W): coarse random colours, bilinearly enlarged (like a photo, not noise)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 4, 3), dtype=np.uint8))
    image = coarse.resize((width, height), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("enabled", [*AUGMENTATIONS, "all"])
@pytest.mark.parametrize(("height", "width"), [(128, 64), (301, 97), (40, 90)])
def test_train_output_is_uint8_at_the_training_size(enabled: str, height: int, width: int) -> None:
    sections = AUGMENTATIONS if enabled == "all" else {enabled: AUGMENTATIONS[enabled]}
    transform = build_train_transform(input_config(**sections))
    for seed in range(3):  # random patch pastes from the third image on
        output = transform(smooth_image(height, width, seed))
        assert output.shape == (3, 256, 128)
        assert output.dtype == torch.uint8


def test_train_transform_is_deterministic_under_manual_seed() -> None:
    image = smooth_image(128, 64)
    outputs = []
    for _ in range(2):
        transform = build_train_transform(input_config(**AUGMENTATIONS))  # fresh patch pool
        torch.manual_seed(7)
        outputs.append(torch.stack([transform(image) for _ in range(4)]))
    assert torch.equal(outputs[0], outputs[1])
    torch.manual_seed(8)
    assert not torch.equal(outputs[0][0], transform(image))


@pytest.mark.parametrize(("source", "target"), [((128, 64), (256, 128)), ((300, 150), (96, 48))])
def test_test_resize_matches_pil_bicubic(source: tuple[int, int], target: tuple[int, int]) -> None:
    image = smooth_image(*source)
    config = input_config(size_test=target)
    ours = build_test_transform(config)(image).to(torch.int16)
    pil = Image.fromarray(image.permute(1, 2, 0).numpy()).resize(
        (target[1], target[0]), Image.Resampling.BICUBIC
    )
    expected = torch.from_numpy(np.array(pil)).permute(2, 0, 1).to(torch.int16)
    assert ours.shape == (3, *target)
    assert (ours - expected).abs().max() <= 2
    assert (ours - expected).abs().float().mean() < 0.5


def test_test_transform_only_resizes() -> None:
    image = smooth_image(256, 128)
    config = input_config(**AUGMENTATIONS)  # training augmentations never reach the test side
    assert torch.equal(build_test_transform(config)(image), image)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, (124, 116, 104)), ((10.0, 20.4, 300.0), (10, 20, 255))]
)
def test_random_erasing_fills_with_the_mean_in_pixel_scale(
    value: tuple[float, float, float] | None, expected: tuple[int, int, int]
) -> None:
    erasing: dict[str, Any] = {"enabled": True, "prob": 1.0}
    if value is not None:
        erasing["value"] = value
    transform = build_train_transform(input_config(random_erasing=erasing))
    image = torch.zeros(3, 256, 128, dtype=torch.uint8)
    torch.manual_seed(0)
    for _ in range(5):
        output = transform(image)
        erased = output.ne(0).any(dim=0)
        assert erased.any()
        rows, cols = erased.nonzero().unbind(1)
        box = output[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert int(erased.sum()) == box.shape[1] * box.shape[2]  # one filled rectangle
        assert box.flatten(1).unique(dim=1).tolist() == [[v] for v in expected]
