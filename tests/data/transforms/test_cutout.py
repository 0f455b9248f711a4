"""Cutout: hand-worked squares, border clipping and the random module."""

import torch

from reid_platform.data.transforms import Cutout, cut_out


def test_hand_worked_square_inside_the_image() -> None:
    image = torch.zeros(3, 4, 5, dtype=torch.uint8)
    output = cut_out(image, center=(2, 2), side=2, fill=(7, 8, 9))
    expected = torch.zeros(3, 4, 5, dtype=torch.uint8)
    for channel, value in enumerate((7, 8, 9)):
        expected[channel, 1:3, 1:3] = value  # rows 1-2, columns 1-2
    assert torch.equal(output, expected)
    assert image.eq(0).all()  # the input is untouched


def test_square_is_clipped_at_the_border() -> None:
    image = torch.zeros(1, 4, 4, dtype=torch.uint8)
    corner = cut_out(image, center=(0, 0), side=3, fill=(1,))
    assert corner[0].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    edge = cut_out(image, center=(3, 1), side=3, fill=(1,))
    assert edge[0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]]


def test_module_cuts_one_square_of_the_configured_side_or_nothing() -> None:
    image = torch.zeros(3, 16, 8, dtype=torch.uint8)
    assert Cutout(prob=0.0, size_fraction=0.5, fill=(5, 5, 5))(image) is image
    cutout = Cutout(prob=1.0, size_fraction=0.5, fill=(5, 6, 7))  # side 4 = 0.5 × min(16, 8)
    torch.manual_seed(0)
    for _ in range(20):
        mask = cutout(image)[0].eq(5)
        rows, cols = mask.nonzero().unbind(1)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert height <= 4 and width <= 4 and int(mask.sum()) == height * width
