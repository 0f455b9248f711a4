"""Random patch: the pool, hand-worked pastes and patch geometry."""

import torch

from reid_platform.data.transforms import RandomPatch, paste_patch


def test_paste_patch_hand_worked() -> None:
    image = torch.zeros(1, 3, 4, dtype=torch.uint8)
    patch = torch.tensor([[[1, 2], [3, 4]]], dtype=torch.uint8)
    output = paste_patch(image, patch, top=1, left=2)
    assert output[0].tolist() == [[0, 0, 0, 0], [0, 0, 1, 2], [0, 0, 3, 4]]
    assert image.eq(0).all()


def test_nothing_is_pasted_until_the_pool_holds_min_sample_size() -> None:
    transform = RandomPatch(prob=1.0, min_sample_size=3)
    image = torch.full((3, 32, 16), 9, dtype=torch.uint8)
    for expected_pool in (1, 2):
        assert transform(image) is image
        assert len(transform.pool) == expected_pool


def test_pasted_patch_is_a_crop_of_an_earlier_image() -> None:
    # Source pixel = 10·row + column + 1: all distinct and non-zero, so a window identifies itself.
    source = (torch.arange(20)[:, None] * 10 + torch.arange(12)[None, :] + 1).to(torch.uint8)
    source = source.expand(3, 20, 12).clone()
    blank = torch.zeros(3, 20, 12, dtype=torch.uint8)
    torch.manual_seed(0)
    pasted = 0
    for _ in range(30):
        transform = RandomPatch(prob=1.0, min_sample_size=2, prob_flip=0.0, prob_rotate=0.0)
        transform(source)
        output = transform(blank)
        if output.eq(0).all():  # the blank image's own patch was drawn
            continue
        pasted += 1
        rows, cols = output[0].nonzero().unbind(1)
        window = output[0, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        top, left = divmod(int(window[0, 0]) - 1, 10)
        height, width = window.shape
        assert torch.equal(window, source[0, top : top + height, left : left + width])
        assert height < 20 and width < 12
        assert height * width <= 0.5 * 240 + height + width  # area ≤ 0.5 of the image, rounded
    assert pasted > 0


def test_pool_capacity_drops_the_oldest_patches() -> None:
    transform = RandomPatch(prob=0.0, pool_capacity=3, min_sample_size=1)
    for value in range(5):
        transform(torch.full((3, 40, 20), value, dtype=torch.uint8))
    assert [int(patch.max()) for patch in transform.pool] == [2, 3, 4]
