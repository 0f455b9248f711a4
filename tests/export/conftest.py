"""Tiny exportable models (ResNet-18 at 64×32) in the variants export must handle, exported once.

Fixtures: `build_variant(name)` builds a variant (seeded, with randomised norm statistics so
that no layer is an identity); `exported_variant(name)` also exports it with the default export
config (`normalize` per variant) and caches the pair for the whole session: each export takes
seconds and every test reuses it. `images`, `make_images`, `query_gallery` give 0-255 inputs.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from reid_platform.config.export import ExportConfig
from reid_platform.config.input import InputConfig
from reid_platform.config.model import ModelConfig
from reid_platform.export import LabeledImages, OnnxExport, export_onnx
from reid_platform.modeling import build_model

HEIGHT, WIDTH = 64, 32
INPUT = InputConfig(size_train=(HEIGHT, WIDTH), size_test=(HEIGHT, WIDTH))

VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "ibn": ({"backbone": {"name": "resnet18", "ibn": True}}, True),
    "gem_learnable": (
        {"backbone": {"name": "resnet18"}, "pooling": {"kind": "gem", "gem": {"learnable": True}}},
        True,
    ),
    "reduction": (
        {"backbone": {"name": "resnet18"}, "neck": {"kind": "reduction", "reduction": {"dim": 64}}},
        False,
    ),
}
"""name → (model config, normalize_output)."""

Variant = tuple[nn.Module, OnnxExport]


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random affine parameters and running statistics in every norm layer, p = 3.5 for GeM."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.InstanceNorm2d):
                if module.affine:
                    module.weight.uniform_(0.5, 1.5, generator=generator)
                    module.bias.uniform_(-0.2, 0.2, generator=generator)
                if module.running_mean is not None and module.running_var is not None:
                    module.running_mean.uniform_(-0.2, 0.2, generator=generator)
                    module.running_var.uniform_(0.5, 2.0, generator=generator)
            p = getattr(module, "p", None)
            if isinstance(p, nn.Parameter):
                p.fill_(3.5)
    return model


def _build_variant(name: str) -> nn.Module:
    torch.manual_seed(0)
    config = ModelConfig.model_validate(VARIANTS[name][0])
    return randomize_norms(build_model(config, INPUT, num_classes=8))


@pytest.fixture(scope="session")
def exported_variant(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Variant]:
    """`exported_variant(name)` → (model in train mode, its ONNX export), cached per session."""
    cache: dict[str, Variant] = {}

    def get(name: str) -> Variant:
        if name not in cache:
            model = _build_variant(name).train()
            config = ExportConfig(normalize_output=VARIANTS[name][1])
            out = tmp_path_factory.mktemp(f"export_{name}") / "model.onnx"
            cache[name] = (model, export_onnx(model, config, out))
        return cache[name]

    return get


def _make_images(count: int, seed: int = 0) -> Tensor:
    """(count, 3, 64, 32) float32 images with integer values in 0-255, as decoded uint8."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, HEIGHT, WIDTH), generator=generator).float()


@pytest.fixture
def images() -> Tensor:
    """Ten (3, 64, 32) 0-255 images: enough for batch sizes 1 and 7."""
    return _make_images(10)


def _identity_images(
    num_ids: int, per_id: int, *, seed: int, noise: float = 40.0
) -> tuple[Tensor, np.ndarray]:
    """(num_ids·per_id, 3, 64, 32) images: one random pattern per id plus pixel noise; pids."""
    generator = torch.Generator().manual_seed(seed)
    bases = torch.randint(0, 256, (num_ids, 1, 3, HEIGHT, WIDTH), generator=generator).float()
    noisy = bases + noise * torch.randn(num_ids, per_id, 3, HEIGHT, WIDTH, generator=generator)
    pids = np.repeat(np.arange(num_ids, dtype=np.int64), per_id)
    return noisy.clamp(0, 255).round().reshape(-1, 3, HEIGHT, WIDTH), pids


@pytest.fixture(scope="session")
def tiny_input() -> InputConfig:
    """The input section of the variants: 64×32 test size, default mean/std."""
    return INPUT


@pytest.fixture(scope="session")
def build_variant() -> Callable[[str], nn.Module]:
    """`build_variant(name)` → a fresh seeded variant (train mode), not exported."""
    return _build_variant


@pytest.fixture(scope="session")
def make_images() -> Callable[..., Tensor]:
    """`make_images(count, seed=0)` → (count, 3, 64, 32) 0-255 images."""
    return _make_images


@pytest.fixture(scope="session")
def query_gallery() -> tuple[LabeledImages, LabeledImages]:
    """6 ids; per id 1 query (camera 0) and 3 gallery images (cameras 1-3): id pattern + noise."""
    images, pids = _identity_images(6, 4, seed=3)
    is_query = np.arange(len(pids)) % 4 == 0
    camids = (np.arange(len(pids)) % 4).astype(np.int64)
    query = LabeledImages(images[is_query], pids[is_query], camids[is_query])
    gallery = LabeledImages(images[~is_query], pids[~is_query], camids[~is_query])
    return query, gallery


@pytest.fixture(scope="session")
def calibration_images() -> Tensor:
    """32 images of 8 ids (0-255), for INT8 calibration."""
    return _identity_images(8, 4, seed=11)[0]
