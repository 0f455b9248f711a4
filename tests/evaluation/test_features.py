"""Feature extraction against per-image forward passes of a tiny randomly initialised model."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from reid_platform.config.data import DataConfig
from reid_platform.config.input import InputConfig
from reid_platform.config.loading import validate_section
from reid_platform.data.build import build_test_loader
from reid_platform.data.image_dataset import decode_rgb
from reid_platform.data.records import ImageRecord
from reid_platform.data.transforms import build_test_transform
from reid_platform.errors import EvaluationError
from reid_platform.evaluation.features import FeatureSet, extract_features
from reid_platform.modeling import ModelOutput, ReidBaselineModel
from reid_platform.modeling.build import build_preprocessing
from reid_platform.modeling.classifiers import LinearClassifier
from reid_platform.modeling.necks import BNNeck
from reid_platform.modeling.pooling import GeMPooling

INPUT = InputConfig(size_train=(64, 32), size_test=(64, 32))
PIDS = (7, 3, 7, 11, 5)  # not sorted: the rows must follow the records, not the ids
CAMIDS = (0, 2, 1, 0, 3)


class _TinyBackbone(nn.Sequential):
    """Two strided conv-bn-relu blocks: (B, 3, 64, 32) → (B, 16, 16, 8), fast on any CPU."""

    out_channels = 16

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip


@pytest.fixture(scope="module")
def model() -> ReidBaselineModel:
    """A randomly initialised baseline (GeM → BN neck, embedding after the neck)."""
    torch.manual_seed(0)
    built = ReidBaselineModel(
        backbone=_TinyBackbone(),
        pooling=GeMPooling(channels=16, p=3.0, learnable=False),
        neck=BNNeck(in_features=16),
        classifier=LinearClassifier(in_features=16, num_classes=3),
        embedding="after",
        preprocessing=build_preprocessing(INPUT),
    )
    for module in built.modules():  # non-trivial running statistics for the eval-mode BNs
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return built


@pytest.fixture
def records(tmp_path: Path) -> list[ImageRecord]:
    # noise images (not flat colours): their horizontal flips differ from them
    rng = np.random.default_rng(0)
    out = []
    for i, (pid, camid) in enumerate(zip(PIDS, CAMIDS, strict=True)):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (70, 30, 3), dtype=np.uint8)).save(path)
        out.append(ImageRecord(path=path, pid=pid, camid=camid, dataset="toy"))
    return out


def _loader(records: list[ImageRecord]) -> torch.utils.data.DataLoader:
    dataset = {"name": "folder", "root": "unused"}
    loader = {"test_batch_size": 2, "num_workers": 0}
    raw = {"train": [dataset], "test": [dataset], "loader": loader}
    config = validate_section(DataConfig, raw, "test")
    return build_test_loader(config, INPUT, records)


def _image(record: ImageRecord) -> torch.Tensor:
    """The (1, 3, 64, 32) uint8 image of one record, read without the loader."""
    return build_test_transform(INPUT)(decode_rgb(record.path)).unsqueeze(0)


def test_embeddings_ids_and_paths_follow_the_records(model: ReidBaselineModel, records) -> None:
    features = extract_features(model, _loader(records))
    assert features.features.dtype == np.float32 and features.features.shape == (5, 16)
    np.testing.assert_array_equal(features.pids, PIDS)
    np.testing.assert_array_equal(features.camids, CAMIDS)
    assert features.pids.dtype == np.int64 and features.camids.dtype == np.int64
    assert features.paths == tuple(str(r.path) for r in records)
    assert features.spatial is None and len(features) == 5
    model.eval()
    with torch.no_grad():
        expected = torch.cat([model(_image(r)).embedding for r in records]).numpy()
    np.testing.assert_allclose(features.features, expected, rtol=1e-4, atol=1e-5)


def test_flip_averages_the_image_and_its_mirror(model: ReidBaselineModel, records) -> None:
    features = extract_features(model, _loader(records), flip=True)
    model.eval()
    with torch.no_grad():
        expected = [
            (model(x).embedding + model(torch.flip(x, dims=(3,))).embedding) / 2
            for x in map(_image, records)
        ]
        plain = torch.cat([model(_image(r)).embedding for r in records]).numpy()
    np.testing.assert_allclose(features.features, torch.cat(expected), rtol=1e-4, atol=1e-5)
    assert not np.allclose(features.features, plain, atol=1e-3)  # the flip did change them


def test_spatial_maps_are_the_unflipped_backbone_maps(model: ReidBaselineModel, records) -> None:
    plain = extract_features(model, _loader(records), flip=True)
    features = extract_features(model, _loader(records), flip=True, spatial=True)
    assert features.spatial is not None
    assert features.spatial.dtype == np.float32 and features.spatial.shape == (5, 16, 16, 8)
    model.eval()
    with torch.no_grad():
        maps = torch.cat([model.forward_features(_image(r)) for r in records]).numpy()
    np.testing.assert_allclose(features.spatial, maps, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(features.features, plain.features, rtol=1e-4, atol=1e-5)


def test_every_modules_mode_is_restored(model: ReidBaselineModel, records) -> None:
    model.train()
    model.backbone.eval()  # e.g. a frozen backbone inside a training model
    extract_features(model, _loader(records[:2]))
    assert model.training and model.head.training
    assert not any(module.training for module in model.backbone.modules())
    model.eval()
    extract_features(model, _loader(records[:2]))
    assert not any(module.training for module in model.modules())


def test_progress_reports_each_batch(model: ReidBaselineModel, records) -> None:
    calls: list[tuple[int, int]] = []
    extract_features(
        model, _loader(records), progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


class _Constant(nn.Module):
    """Embedding = per-image mean pixel value, so a hand check is one line."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images: torch.Tensor) -> ModelOutput:
        return ModelOutput(embedding=images.float().mean(dim=(1, 2, 3))[:, None] * self.scale)


def test_plain_batches_give_ids_from_the_batches_and_no_paths() -> None:
    images = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).reshape(4, 3, 2, 2)
    batches = [
        {"images": images[:3], "pids": torch.tensor([4, 1, 4]), "camids": torch.tensor([0, 1, 2])},
        {"images": images[3:], "pids": torch.tensor([9]), "camids": torch.tensor([5])},
    ]
    features = extract_features(_Constant(), batches)
    np.testing.assert_allclose(features.features[:, 0], images.mean(dim=(1, 2, 3)).numpy())
    np.testing.assert_array_equal(features.pids, [4, 1, 4, 9])
    np.testing.assert_array_equal(features.camids, [0, 1, 2, 5])
    assert features.paths == ()


def test_user_errors_are_evaluation_errors() -> None:
    with pytest.raises(EvaluationError, match="no images"):
        extract_features(_Constant(), [])
    with pytest.raises(EvaluationError, match="forward_features"):
        extract_features(_Constant(), [], spatial=True)
    with pytest.raises(EvaluationError, match="rows"):
        FeatureSet(
            features=np.zeros((3, 2), np.float32),
            pids=np.zeros(2, np.int64),
            camids=np.zeros(3, np.int64),
            paths=(),
        )
    with pytest.raises(EvaluationError, match="move it"):
        extract_features(_Constant(), [], device="meta")
