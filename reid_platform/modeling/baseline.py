"""The baseline re-id model (the reference's `Baseline` + `EmbeddingHead`):
input normalisation → backbone → pooling → neck → classifier.

Which feature is the retrieval embedding is explicit: `embedding="before"` takes the pooled
feature, `"after"` the neck's output; `metric_feature` makes the same choice for the triplet /
pairwise losses (the reference's `NECK_FEAT`). The reference always *evaluated* the post-neck
feature whatever `NECK_FEAT` said, i.e. `embedding="after"` here.
"""

from typing import Literal

import torch
from torch import Tensor, nn

from reid_platform.modeling.output import ModelOutput, Preprocessing

EmbeddingSource = Literal["before", "after"]


def declared_width(module: nn.Module, attribute: str) -> int:
    """The width a component declares as `attribute` (`out_channels`, `out_features`)."""
    width = getattr(module, attribute, None)
    if not isinstance(width, int):
        raise TypeError(f"{type(module).__name__} declares no integer {attribute!r}")
    return width


class InputNormalization(nn.Module):
    """(B, 3, H, W) uint8 or float images in 0-255 → float `(x − mean) / std`, a new tensor.

    `mean` and `std` (0-255 scale) are non-persistent buffers: they follow `.to(device)` and
    `.half()` but stay out of the state dict, like the reference's current `pixel_mean`.
    The input is never modified; its memory format (e.g. channels_last) is kept.
    """

    pixel_mean: Tensor
    pixel_std: Tensor

    def __init__(self, *, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean {mean} and std {std} must pair up, with std > 0")
        mean_tensor = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std_tensor = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("pixel_mean", mean_tensor, persistent=False)
        self.register_buffer("pixel_std", std_tensor, persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std


class EmbeddingHead(nn.Module):
    """Pooling → neck → classifier on one feature map (the reference's `EmbeddingHead`).

    Components are given built; `embedding` picks the pooled (`before`) or neck (`after`)
    feature as the retrieval embedding, `metric_feature` the same for the metric losses.
    """

    def __init__(
        self,
        *,
        pooling: nn.Module,
        neck: nn.Module,
        classifier: nn.Module,
        in_channels: int,
        embedding: EmbeddingSource,
        metric_feature: EmbeddingSource = "before",
    ) -> None:
        super().__init__()
        for name, value in (("embedding", embedding), ("metric_feature", metric_feature)):
            if value not in ("before", "after"):
                raise ValueError(f"{name} must be 'before' or 'after', got {value!r}")
        self.pooling = pooling
        self.neck = neck
        self.classifier = classifier
        self.embedding = embedding
        self.metric_feature = metric_feature
        self.embedding_dim = (
            in_channels if embedding == "before" else declared_width(neck, "out_features")
        )

    def embed(self, feature_map: Tensor) -> Tensor:
        """(B, C, h, w) → (B, embedding_dim): the eval-mode path, without the classifier."""
        pooled: Tensor = self.pooling(feature_map)
        if self.embedding == "before":
            return pooled
        neck_feature: Tensor = self.neck(pooled)
        return neck_feature

    def forward(
        self, feature_map: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(B, C, h, w), targets (B,) → (embedding (B, embedding_dim), metric feature (B, D_m),
        logits, scores (B, K))."""
        pooled: Tensor = self.pooling(feature_map)
        neck_feature: Tensor = self.neck(pooled)
        logits, scores = self.classifier(neck_feature, targets)
        embedding = pooled if self.embedding == "before" else neck_feature
        metric = pooled if self.metric_feature == "before" else neck_feature
        return embedding, metric, logits, scores


class ReidBaselineModel(nn.Module):
    """Backbone + one embedding head, normalising its own 0-255 input.

    images: (B, 3, H, W), uint8 or float in 0-255, RGB, resized per `preprocessing`.
    Training mode: `ModelOutput(embedding, (logits,), (scores,), (metric_feature,))`, the margin
    applied when `targets` (B,) are given. Eval mode: only `embedding` (B, embedding_dim); the
    other fields are empty tuples, so the eval graph is the embedder alone (exportable).
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        pooling: nn.Module,
        neck: nn.Module,
        classifier: nn.Module,
        embedding: EmbeddingSource,
        preprocessing: Preprocessing,
        metric_feature: EmbeddingSource = "before",
    ) -> None:
        super().__init__()
        self.preprocessing = preprocessing
        self.normalization = InputNormalization(mean=preprocessing.mean, std=preprocessing.std)
        self.backbone = backbone
        self.head = EmbeddingHead(
            pooling=pooling,
            neck=neck,
            classifier=classifier,
            in_channels=declared_width(backbone, "out_channels"),
            embedding=embedding,
            metric_feature=metric_feature,
        )

    @property
    def embedding_dim(self) -> int:
        """Width D of the retrieval embedding."""
        return self.head.embedding_dim

    def forward_features(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) 0-255 images → (B, C, h, w) backbone feature map (normalised inside)."""
        feature_map: Tensor = self.backbone(self.normalization(images))
        return feature_map

    def forward_head(self, feature_map: Tensor, targets: Tensor | None = None) -> ModelOutput:
        """(B, C, h, w) feature map, optional targets (B,) → `ModelOutput` (see the class)."""
        if not self.training:
            return ModelOutput(embedding=self.head.embed(feature_map))
        embedding, metric, logits, scores = self.head(feature_map, targets)
        return ModelOutput(
            embedding=embedding, logits=(logits,), class_scores=(scores,), metric_features=(metric,)
        )

    def forward(self, images: Tensor, targets: Tensor | None = None) -> ModelOutput:
        """(B, 3, H, W) 0-255 images, optional targets (B,) → `ModelOutput`."""
        return self.forward_head(self.forward_features(images), targets)

    def forward_scores(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) 0-255 images → `ModelOutput(embedding (B, D), class_scores=((B, K),))`
        in either mode: what a distillation teacher gives (in eval mode its BN layers use their
        running statistics; `forward` would drop the scores there)."""
        embedding, _, _, scores = self.head(self.forward_features(images))
        return ModelOutput(embedding=embedding, class_scores=(scores,))
