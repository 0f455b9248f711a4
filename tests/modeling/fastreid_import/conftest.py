"""FastReID-layout state dicts made from our models, written independently of the importer.

`to_fastreid` is the inverse of the importer's key map, written by hand from the reference notes
(§4.2 key scheme, §4.3 older layouts, MGN's numbered trunk): our key → FastReID's key name. A
randomly initialised model A of ours, exported through it, plays the part of a FastReID
checkpoint; importing it into a fresh model B must reproduce A's embeddings.
"""

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from reid_platform.config import ReidConfig, config_from_mapping
from reid_platform.modeling import build_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MGN_BRANCHES = ("b1", "b2", "b3")
MGN_HEADS = ("b1", "b2", "b3", "b21", "b22", "b31", "b32", "b33")

MakeConfig = Callable[..., ReidConfig]
BuildModel = Callable[..., nn.Module]
ToFastReID = Callable[..., dict[str, Tensor]]

# FastReID's own settings that a model A must have to stand in for a FastReID model.
FASTREID_RESNET = ("model.backbone.reference_stem=true", "model.neck.embedding=after")


def _config(*overrides: str, size: tuple[int, int] = (64, 32)) -> ReidConfig:
    dataset = {"name": "market1501", "root": "unused"}
    raw = {
        "seed": 0,
        "data": {"train": [dataset], "test": [dataset]},
        "input": {"size_train": list(size), "size_test": list(size)},
    }
    return config_from_mapping(raw, list(overrides))


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Give every norm layer, non-local output BN and GeM exponent non-default values, so that a
    tensor left at its init (identity BN, zero non-local output) would change the embedding."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point() or tensor.dim() != 1:
                continue
            # Scales weight / sqrt(var) in [0.35, 1], so deep stacks stay well conditioned.
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 1.0)
            elif name.endswith("weight"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.5)
            elif name.endswith(".p"):
                tensor.fill_(3.5)
            else:  # bias, running_mean
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return model.eval()


def _head_name(name: str, tensor: Tensor, *, layout: str, projected: bool) -> tuple[str, Tensor]:
    """Our head-relative name (after `head.` / `bN_head.`) → FastReID's, with the tensor."""
    if name == "pooling.p":
        return "pool_layer.p", tensor
    if name == "classifier.weight":
        return ("weight" if layout == "current" else "classifier.weight"), tensor
    if name == "neck.projection.weight":  # FastReID: a 1×1 conv, (D, C, 1, 1)
        return "bottleneck.0.weight", tensor[:, :, None, None]
    if name.startswith("neck.bn."):
        field = name.removeprefix("neck.bn.")
        if layout == "old":
            return f"bnneck.{field}", tensor
        return f"bottleneck.{1 if projected else 0}.{field}", tensor
    raise AssertionError(f"no FastReID name for head key {name!r}")


def _to_fastreid(
    ours: dict[str, Tensor], *, layout: str = "current", mgn: bool = False
) -> dict[str, Tensor]:
    """Our state dict → FastReID's key layout `current`, `intermediate` or `old` (v0.1.1)."""
    out: dict[str, Tensor] = {}
    for key, tensor in ours.items():
        first, _, rest = key.partition(".")
        if first == "backbone" or (mgn and first in MGN_BRANCHES):
            out[key] = tensor.clone()  # bodies keep FastReID's / torchvision's names
            continue
        if mgn:
            assert first.endswith("_head") and first.removesuffix("_head") in MGN_HEADS, key
            fastreid_head = first
        else:
            assert first == "head", key
            fastreid_head = "heads"
        projected = f"{first}.neck.projection.weight" in ours
        name, value = _head_name(rest, tensor, layout=layout, projected=projected)
        out[f"{fastreid_head}.{name}"] = value.clone()
    if layout in ("old", "intermediate"):
        # Persistent buffers registered as Tensor(PIXEL_MEAN).view(1, -1, 1, 1).
        out["pixel_mean"] = torch.tensor([255 * m for m in IMAGENET_MEAN]).view(1, -1, 1, 1)
        out["pixel_std"] = torch.tensor([255 * s for s in IMAGENET_STD]).view(1, -1, 1, 1)
    return out


@pytest.fixture
def make_config() -> MakeConfig:
    """`make_config(*overrides, size=(64, 32))` → a validated config with a dummy dataset."""
    return _config


@pytest.fixture
def build() -> BuildModel:
    """`build(config, num_classes, seed=0)` → our model, eval mode, norms randomised."""

    def make(config: ReidConfig, num_classes: int, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        model = build_model(config.model, config.input, num_classes=num_classes)
        return _randomize(model, seed)

    return make


@pytest.fixture
def to_fastreid() -> ToFastReID:
    """`to_fastreid(state, layout="current", mgn=False)`: see `_to_fastreid`."""
    return _to_fastreid


@pytest.fixture
def images() -> Callable[..., Tensor]:
    """`images(batch, size, seed=0)` → (B, 3, H, W) float RGB in 0-255."""

    def make(batch: int, size: tuple[int, int], seed: int = 0) -> Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randint(0, 256, (batch, 3, *size), generator=generator).float()

    return make


@pytest.fixture
def fastreid_normalize() -> Callable[[Tensor], Tensor]:
    """FastReID's preprocessing of 0-255 RGB: `(x − mean·255) / (std·255)`, ImageNet mean/std."""

    def normalize(x: Tensor) -> Tensor:
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
        return (x - mean) / std

    return normalize
