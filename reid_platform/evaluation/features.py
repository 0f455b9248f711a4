"""Feature extraction: a model and a test loader → embeddings, ids, paths (and spatial maps).

Semantics:
- The model runs in eval mode under `torch.inference_mode`; every module's train/eval flag is
  restored afterwards (module by module, so e.g. a frozen BN inside a training model stays so).
- Rows follow the loader's order. Ids and paths come from the loader's dataset records (an
  `ImageDataset` exposes `.records`; each batch's `index` names its records), so they are the
  raw benchmark ids; without records, pids/camids are read from the batches and `paths` is empty.
- `flip=True` (test-time augmentation) gives the mean of the embeddings of the image and of its
  horizontal flip, averaged *before* any normalisation: the reference sums the two raw
  embeddings, which ranks identically (cosine and euclidean rankings are invariant to a factor 2).
- `spatial=True` also keeps the backbone maps of `model.forward_features` (for DSR); the
  embedding then comes from `model.forward_head(feature_map)`, so the backbone runs once. With
  flip, the spatial maps are those of the unflipped image.
- No progress bar here: callers pass `progress(done_batches, total_batches)` and render it.
"""

from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import Tensor, nn

from reid_platform.errors import EvaluationError

Batch = Mapping[str, Any]
"""A loader batch: `images` (B, 3, H, W) 0-255, `pids` (B,), `camids` (B,), `index` (B,)."""

Progress = Callable[[int, int], None]
"""`progress(done, total)` after each batch; total is 0 when the loader has no length."""


class SpatialModel(Protocol):
    """The part of the model API (`ReidBaselineModel`, MGN) that spatial extraction needs."""

    def forward_features(self, images: Tensor) -> Tensor: ...

    def forward_head(self, feature_map: Tensor) -> Any: ...


@dataclass(frozen=True)
class FeatureSet:
    """Features of one image set, rows in loader order.

    features: (n, d) float32 embeddings (not L2-normalised).
    pids, camids: (n,) int64.
    paths: n image paths, or () when the loader's dataset exposes no records.
    spatial: (n, C, h, w) float32 backbone maps when extracted with `spatial=True`, else None.
    """

    features: np.ndarray
    pids: np.ndarray
    camids: np.ndarray
    paths: tuple[str, ...]
    spatial: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.features.shape[0] if self.features.ndim == 2 else -1
        if n < 0:
            raise EvaluationError(f"features must be (n, d), got shape {self.features.shape}")
        for name, array in (("pids", self.pids), ("camids", self.camids)):
            if array.shape != (n,):
                raise EvaluationError(f"{name} has shape {array.shape} but features have {n} rows")
        if self.paths and len(self.paths) != n:
            raise EvaluationError(f"{len(self.paths)} paths were given for {n} feature rows")
        if self.spatial is not None and (self.spatial.ndim != 4 or self.spatial.shape[0] != n):
            raise EvaluationError(
                f"spatial maps must be (n={n}, C, h, w), got shape {self.spatial.shape}"
            )

    def __len__(self) -> int:
        return int(self.features.shape[0])


def extract_features(
    model: nn.Module,
    loader: Iterable[Batch],
    *,
    device: str | torch.device = "cpu",
    flip: bool = False,
    spatial: bool = False,
    progress: Progress | None = None,
) -> FeatureSet:
    """Run `model` (already on `device`) over `loader`; see the module docstring for semantics.

    model: eval-mode `forward(images)` returns an object with `.embedding` (B, D); with
        `spatial`, it also needs `forward_features` (B, 3, H, W) → (B, C, h, w) and
        `forward_head(feature_map)`.
    loader: batches as `Batch` describes, e.g. `data.build.build_test_loader(...)`.
    """
    target = torch.device(device)
    _check_device(model, target)
    spatial_model = _spatial_api(model) if spatial else None
    records = getattr(getattr(loader, "dataset", None), "records", None)
    total = len(loader) if isinstance(loader, Sized) else 0
    collected = _Collected()
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            for done, batch in enumerate(loader, start=1):
                images = batch["images"].to(target, non_blocking=True)
                collected.add(batch, *_embed(model, spatial_model, images, flip))
                if progress is not None:
                    progress(done, total)
    finally:
        for module, training in modes:
            module.training = training
    if not collected.embeddings:
        raise EvaluationError("the loader yielded no images to extract features from")
    pids, camids, paths = _ids_and_paths(records, collected)
    return FeatureSet(
        features=np.concatenate(collected.embeddings),
        pids=pids,
        camids=camids,
        paths=paths,
        spatial=np.concatenate(collected.maps) if spatial else None,
    )


@dataclass
class _Collected:
    """Per-batch outputs, in loader order."""

    embeddings: list[np.ndarray] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)
    pids: list[np.ndarray] = field(default_factory=list)
    camids: list[np.ndarray] = field(default_factory=list)
    indices: list[np.ndarray] = field(default_factory=list)

    def add(self, batch: Batch, embedding: Tensor, feature_map: Tensor | None) -> None:
        self.embeddings.append(embedding.float().cpu().numpy())
        if feature_map is not None:
            self.maps.append(feature_map.float().cpu().numpy())
        self.pids.append(_int64(batch["pids"]))
        self.camids.append(_int64(batch["camids"]))
        if "index" in batch:
            self.indices.append(_int64(batch["index"]))


def _embed(
    model: nn.Module, spatial_model: SpatialModel | None, images: Tensor, flip: bool
) -> tuple[Tensor, Tensor | None]:
    """(B, 3, H, W) → embedding (B, D) (flip-averaged when asked), feature map or None."""
    feature_map = None
    if spatial_model is None:
        embedding: Tensor = model(images).embedding
    else:
        feature_map = spatial_model.forward_features(images)
        embedding = spatial_model.forward_head(feature_map).embedding
    if flip:
        flipped = torch.flip(images, dims=(3,))
        embedding = (embedding + model(flipped).embedding) / 2
    return embedding, feature_map


def _spatial_api(model: nn.Module) -> SpatialModel:
    for name in ("forward_features", "forward_head"):
        if not callable(getattr(model, name, None)):
            raise EvaluationError(
                f"spatial features need model.{name}, which {type(model).__name__} lacks"
            )
    return cast(SpatialModel, model)


def _check_device(model: nn.Module, target: torch.device) -> None:
    parameter = next(model.parameters(), None)
    if parameter is None:
        return
    actual = parameter.device
    if actual.type != target.type or (target.index is not None and actual.index != target.index):
        raise EvaluationError(
            f"the model is on {actual} but features were asked on {target}; move it there first"
        )


def _int64(values: Tensor | np.ndarray | list[int]) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.cpu().numpy().astype(np.int64, copy=False)
    return np.asarray(values, dtype=np.int64)


def _ids_and_paths(
    records: Any, collected: _Collected
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(pids, camids, paths) from the dataset's records when batches say which, else batches."""
    if records is None or len(collected.indices) != len(collected.pids):
        return np.concatenate(collected.pids), np.concatenate(collected.camids), ()
    chosen = [records[int(i)] for i in np.concatenate(collected.indices)]
    pids = np.array([record.pid for record in chosen], dtype=np.int64)
    camids = np.array([record.camid for record in chosen], dtype=np.int64)
    return pids, camids, tuple(str(record.path) for record in chosen)
