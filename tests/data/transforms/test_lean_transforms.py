"""Our uint8 pad + random crop and random erasing: same geometry as torchvision's versions."""

import pytest
import torch
from torchvision.transforms.v2.functional import pad_image

from reid_platform.data.transforms import RandomErasing, RandomPadCrop


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_pad_crop_output_is_a_window_of_the_padded_image(mode: str) -> None:
    image = torch.randint(1, 256, (3, 6, 5), dtype=torch.uint8)
    padded = pad_image(image, [2], padding_mode=mode)
    windows = {
        padded[:, top : top + 6, left : left + 5].numpy().tobytes(): (top, left)
        for top in range(5)
        for left in range(5)
    }
    transform = RandomPadCrop(size=(6, 5), padding=2, mode=mode)  # type: ignore[arg-type]
    torch.manual_seed(0)
    outputs = [transform(image) for _ in range(150)]
    assert all(output.shape == (3, 6, 5) for output in outputs)
    seen = {windows[output.numpy().tobytes()] for output in outputs}  # KeyError: not a window
    assert len(seen) == 25  # every offset occurs


def test_pad_crop_hand_worked_constant_corner() -> None:
    image = torch.arange(1, 7, dtype=torch.uint8).view(1, 2, 3)
    transform = RandomPadCrop(size=(2, 3), padding=1)
    torch.manual_seed(0)
    outputs = {tuple(map(tuple, transform(image)[0].tolist())) for _ in range(100)}
    assert ((0, 0, 0), (0, 1, 2)) in outputs  # window at the top-left corner of the padding
    assert ((5, 6, 0), (0, 0, 0)) in outputs  # window at the bottom-right corner
    assert len(outputs) == 9


def test_erasing_fills_one_rectangle_within_the_area_bounds() -> None:
    image = torch.zeros(3, 64, 32, dtype=torch.uint8)
    erasing = RandomErasing(prob=1.0, scale=(0.1, 0.2), ratio=(0.5, 2.0), fill=(1, 2, 3))
    torch.manual_seed(0)
    for _ in range(50):
        output = erasing(image)
        mask = output[0].eq(1)
        rows, cols = mask.nonzero().unbind(1)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert int(mask.sum()) == height * width
        assert output[1][mask].eq(2).all() and output[2][mask].eq(3).all()
        assert 0.1 * 2048 - (height + width) <= height * width <= 0.2 * 2048 + (height + width)
        assert 0.5 / 1.2 <= height / width <= 2.0 * 1.2
    assert image.eq(0).all()


def test_erasing_with_probability_zero_returns_the_input() -> None:
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    assert RandomErasing(prob=0.0, fill=(1, 1, 1))(image) is image


def test_pad_crop_gives_the_same_pixels_for_channels_last_input() -> None:
    planar = torch.randint(0, 256, (3, 30, 20), dtype=torch.uint8)
    channels_last = planar.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # as decoders return
    transform = RandomPadCrop(size=(30, 20), padding=4)
    for seed in range(10):
        torch.manual_seed(seed)
        expected = transform(planar)
        torch.manual_seed(seed)
        assert torch.equal(transform(channels_last), expected)
