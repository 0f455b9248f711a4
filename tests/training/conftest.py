"""Tiny real re-id models (baseline and MGN) for the training-core tests, and the quickstart
recipe shrunk to seconds for the loop tests."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from reid_platform.config import ReidConfig, load_config
from reid_platform.modeling.baseline import EmbeddingHead, ReidBaselineModel
from reid_platform.modeling.classifiers import LinearClassifier
from reid_platform.modeling.mgn import MultipleGranularityNetwork
from reid_platform.modeling.necks import BNNeck
from reid_platform.modeling.output import Preprocessing
from reid_platform.modeling.pooling import GeMPooling

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments/quickstart.yaml"

# 16 synthetic ids (about 8 for training, 2 of them held out for validation), 8 images each,
# 64×32 images, timm's 0.4 M-parameter test ResNet: three iterations of 16 images per epoch.
# Each test module adds its epochs, warmup and evaluation periods.
TINY_TRAINING = [
    "data.train.0.synthetic.ids=16",
    "data.test.0.synthetic.ids=16",
    "data.train.0.synthetic.images_per_id=8",
    "data.test.0.synthetic.images_per_id=8",
    "data.validation.num_ids=2",
    "data.loader.num_workers=0",
    "data.loader.batch_size=16",
    "data.loader.test_batch_size=32",
    "input.size_train=[64,32]",
    "input.size_test=[64,32]",
    "model.backbone.name=timm:test_resnet",
    "model.backbone.last_stride=2",
    "evaluation.rank_list_queries=2",
    "training.log_period=2",
    "export.formats=[]",  # the export tests turn it on
]


def tiny_training_config(data_root: Path, *overrides: str) -> ReidConfig:
    """The quickstart recipe shrunk to seconds (`TINY_TRAINING`), reading (generating) its
    data under `data_root`, then `overrides`."""
    roots = [f"data.train.0.root={data_root}", f"data.test.0.root={data_root}"]
    return load_config(QUICKSTART, [*TINY_TRAINING, *roots, *overrides])


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: the tiny models are faster so, and runs do not fight over cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


NUM_CLASSES = 4
PREPROCESSING = Preprocessing(
    input_size=(48, 16), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)
)


def _block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class TinyStagedBackbone(nn.Module):
    """A stem and four conv-bn-relu stages (stage 3 has two blocks, as MGN cuts it), with the
    `StagedBackbone` views MGN needs; the stem conv has a bias so `bias` roles occur too."""

    def __init__(self, *, width: int = 4, last_stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 2, 1, bias=True)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(_block(width, width, 1))
        self.layer2 = nn.Sequential(_block(width, 2 * width, 2))
        self.layer3 = nn.Sequential(
            _block(2 * width, 2 * width, 1), _block(2 * width, 2 * width, 1)
        )
        self.layer4 = nn.Sequential(_block(2 * width, 4 * width, last_stride))
        self.stage_channels = (width, 2 * width, 2 * width, 4 * width)
        self.out_channels = 4 * width

    def stem(self) -> nn.Sequential:
        return nn.Sequential(self.conv1, self.bn1, self.relu)

    def stage(self, index: int) -> nn.Sequential:
        stage: nn.Sequential = getattr(self, f"layer{index}")
        return stage

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _head(channels: int, *, neck_dim: int | None = None) -> EmbeddingHead:
    neck = BNNeck(in_features=channels, out_features=neck_dim)
    return EmbeddingHead(
        pooling=GeMPooling(channels=channels, learnable=True),
        neck=neck,
        classifier=LinearClassifier(in_features=neck.out_features, num_classes=NUM_CLASSES),
        in_channels=channels,
        embedding="after",
        metric_feature="before",
    )


def make_baseline(seed: int = 0) -> ReidBaselineModel:
    torch.manual_seed(seed)
    backbone = TinyStagedBackbone()
    head = _head(backbone.out_channels)
    return ReidBaselineModel(
        backbone=backbone,
        pooling=head.pooling,
        neck=head.neck,
        classifier=head.classifier,
        embedding="after",
        preprocessing=PREPROCESSING,
    )


def make_mgn(seed: int = 0) -> MultipleGranularityNetwork:
    torch.manual_seed(seed)
    backbone = TinyStagedBackbone()
    global_stage = TinyStagedBackbone(last_stride=2).layer4
    return MultipleGranularityNetwork(
        backbone=backbone,
        global_last_stage=global_stage,
        make_head=lambda: _head(backbone.out_channels, neck_dim=8),
        preprocessing=PREPROCESSING,
    )


def images(batch: int = 4, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, 48, 16), generator=generator).float()


def targets(batch: int = 4) -> Tensor:
    return torch.arange(batch) % NUM_CLASSES


@pytest.fixture
def baseline() -> Callable[..., ReidBaselineModel]:
    """`baseline(seed=0)` → a fresh tiny `ReidBaselineModel` (BNNeck, linear classifier)."""
    return make_baseline


@pytest.fixture
def mgn() -> Callable[..., MultipleGranularityNetwork]:
    """`mgn(seed=0)` → a fresh tiny MGN (8 heads with a projection neck)."""
    return make_mgn


@pytest.fixture
def batch() -> Callable[..., tuple[Tensor, Tensor]]:
    """`batch(size=4, seed=0)` → (images (B, 3, 48, 16) in 0-255, targets (B,))."""
    return lambda size=4, seed=0: (images(size, seed), targets(size))
