"""`ImageDataset`: decoding, labels, sample layout, and clear errors for unreadable files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from reid_platform.data.image_dataset import ImageDataset, decode_rgb, to_planar
from reid_platform.data.records import ImageRecord
from reid_platform.data.samplers import PKSampler
from reid_platform.errors import DatasetError


def write_image(path: Path, height: int = 20, width: int = 10, mode: str = "RGB") -> np.ndarray:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return pixels


def record(path: Path, pid: int = 3, camid: int = 1) -> ImageRecord:
    return ImageRecord(path=path, pid=pid, camid=camid, dataset="test")


def test_sample_holds_the_decoded_image_and_its_labels(tmp_path: Path) -> None:
    pixels = write_image(tmp_path / "a.png")
    dataset = ImageDataset([record(tmp_path / "a.png", pid=7, camid=2)], lambda image: image)
    sample = dataset[0]
    assert set(sample) == {"images", "pids", "camids", "index"}
    image = sample["images"]
    assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8
    assert image.is_contiguous()  # planar memory: the loader's stack takes its fast path
    assert torch.equal(image, torch.from_numpy(pixels).permute(2, 0, 1))  # PNG is lossless
    assert (sample["pids"], sample["camids"], sample["index"]) == (7, 2, 0)


def test_training_labels_replace_record_pids(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg")
    records = [record(tmp_path / "a.jpg", pid=1501), record(tmp_path / "a.jpg", pid=42)]
    dataset = ImageDataset(records, lambda image: image, labels=[0, 1])
    assert [dataset[i]["pids"] for i in range(2)] == [0, 1]
    with pytest.raises(ValueError, match="1 labels for 2 records"):
        ImageDataset(records, lambda image: image, labels=[0])


@pytest.mark.parametrize(
    ("name", "mode"), [("grey.png", "L"), ("alpha.png", "RGBA"), ("a.bmp", "RGB")]
)
def test_grey_alpha_and_other_formats_decode_to_rgb(tmp_path: Path, name: str, mode: str) -> None:
    write_image(tmp_path / name, mode=mode)
    image = decode_rgb(tmp_path / name)
    assert image.shape == (3, 20, 10) and image.dtype == torch.uint8


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "missing"])
def test_unreadable_image_raises_dataset_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "broken.jpg"
    if damage != "missing":
        write_image(tmp_path / "good.jpg", height=64, width=32)
        data = (tmp_path / "good.jpg").read_bytes()
        path.write_bytes(
            {"truncated": data[: len(data) // 2], "garbage": b"\x00" * 99, "empty": b""}[damage]
        )
    dataset = ImageDataset([record(path)], lambda image: image)
    with pytest.raises(DatasetError, match=r"broken\.jpg") as caught:
        dataset[0]
    assert "\n" not in str(caught.value)


def test_batches_through_a_data_loader_with_a_pk_sampler(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg")
    records = [record(tmp_path / "a.jpg", pid=i // 4, camid=i % 2) for i in range(16)]
    sampler = PKSampler(pids=[r.pid for r in records], batch_size=8, num_instances=4, seed=0)
    dataset = ImageDataset(records, lambda image: image)
    batches = list(DataLoader(dataset, batch_sampler=sampler))
    assert len(batches) == len(sampler) == 2
    assert batches[0]["images"].shape == (8, 3, 20, 10)
    assert batches[0]["images"].dtype == torch.uint8
    assert batches[0]["pids"].tolist() == [records[i].pid for i in batches[0]["index"].tolist()]


def test_to_planar_copies_channels_last_images_into_planar_memory() -> None:
    hwc = torch.randint(0, 256, (5, 4, 3), dtype=torch.uint8)
    planar = to_planar(hwc.permute(2, 0, 1))
    assert planar.is_contiguous() and torch.equal(planar, hwc.permute(2, 0, 1))
    already = planar.clone()
    assert to_planar(already) is already
