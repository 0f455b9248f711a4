"""Multiple Granularity Network (Wang et al. 2018; the reference's `MGN` meta-architecture).

A ResNet-family backbone (a `StagedBackbone`: ResNet, ResNeXt, ResNeSt, with their IBN, SE and
non-local options) is cut after the first block of its third stage. The shared trunk (stem,
stage 1, stage 2, stage 3 block 0) feeds three branches, each its own copy of the rest of
stage 3 and of stage 4:

- `b1`, global: stage 4 with the backbone's configured last stride (the MGN paper uses 2;
  FastReID's configs build it with `LAST_STRIDE=1`);
- `b2`, two parts and `b3`, three parts: stage 4 with stride 1, the map then cut into 2 / 3
  horizontal stripes exactly as the reference's `torch.chunk` does (stripes of ceil(h/n) rows,
  the last one shorter).

Eight embedding heads (pooling → bias-free projection to `branch_embedding_dim` → frozen-bias
BN → classifier) take the maps b1, b2, b3, b21, b22, b31, b32, b33, in the reference's order.
Attribute names follow the reference (`backbone` as an `nn.Sequential` with the same indices,
`b1`/`b2`/`b3` with `{0: rest of stage 3, 1: stage 4}`, `b1_head` ... `b33_head`), so a
checkpoint importer only renames inside the heads. Unlike the reference, which rebuilt the
branches from the bare blocks, non-local blocks of the backbone stay in the branches.
"""

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from reid_platform.modeling.backbones.stages import StagedBackbone
from reid_platform.modeling.baseline import EmbeddingHead, InputNormalization
from reid_platform.modeling.output import ModelOutput, Preprocessing

HEAD_NAMES = ("b1", "b2", "b3", "b21", "b22", "b31", "b32", "b33")
"""Order of the heads in the embedding, the logits and the class scores."""


def split_rows(feature_map: Tensor, parts: int) -> tuple[Tensor, ...]:
    """(B, C, h, w) → `parts` stripes along h, as `torch.chunk` cuts them (the reference's way).

    `torch.chunk` makes stripes of ceil(h / parts) rows and may return fewer than `parts` of
    them for small h (e.g. h=4, parts=3); that is refused with a message instead.
    """
    stripes = torch.chunk(feature_map, parts, dim=2)
    if len(stripes) != parts:
        raise ValueError(
            f"MGN cannot cut a feature map of height {feature_map.shape[2]} into {parts} "
            "stripes; use a taller input"
        )
    return stripes


class MultipleGranularityNetwork(nn.Module):
    """MGN over a ResNet-family backbone.

    backbone: a `StagedBackbone` built with last stride 1; its stage 4 is copied into the part
        branches.
    global_last_stage: stage 4 for the global branch (same weights; the configured stride).
    make_head: builds one fresh `EmbeddingHead` for a (B, backbone.out_channels, h, w) map;
        called eight times.
    Training output: embedding (B, 8·D) of the 8 head features, 8 logits and 8 class scores
    in `HEAD_NAMES` order, and 5 metric features: b1, b2, b3, cat(b21, b22), cat(b31, b32, b33)
    (the reference's triplet inputs). Eval output: the embedding only.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        global_last_stage: nn.Module,
        make_head: Callable[[], EmbeddingHead],
        preprocessing: Preprocessing,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, StagedBackbone):
            raise ValueError(
                f"MGN needs a ResNet-family backbone with stages; {type(backbone).__name__} "
                "has none"
            )
        self.preprocessing = preprocessing
        self.normalization = InputNormalization(mean=preprocessing.mean, std=preprocessing.std)
        stage3 = list(backbone.stage(3))
        self.backbone = nn.Sequential(
            *backbone.stem(), backbone.stage(1), backbone.stage(2), stage3[0]
        )
        rest_of_stage3 = nn.Sequential(*stage3[1:])
        part_last_stage = backbone.stage(4)
        self.b1 = nn.Sequential(copy.deepcopy(rest_of_stage3), copy.deepcopy(global_last_stage))
        self.b2 = nn.Sequential(copy.deepcopy(rest_of_stage3), copy.deepcopy(part_last_stage))
        self.b3 = nn.Sequential(copy.deepcopy(rest_of_stage3), copy.deepcopy(part_last_stage))
        self.b1_head = make_head()
        self.b2_head = make_head()
        self.b3_head = make_head()
        self.b21_head = make_head()
        self.b22_head = make_head()
        self.b31_head = make_head()
        self.b32_head = make_head()
        self.b33_head = make_head()

    @property
    def embedding_dim(self) -> int:
        """Width of the embedding: 8 × the width of one head's feature."""
        return len(HEAD_NAMES) * self.b1_head.embedding_dim

    def heads(self) -> tuple[EmbeddingHead, ...]:
        """The eight heads in `HEAD_NAMES` order."""
        return (
            self.b1_head,
            self.b2_head,
            self.b3_head,
            self.b21_head,
            self.b22_head,
            self.b31_head,
            self.b32_head,
            self.b33_head,
        )

    def forward_features(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) 0-255 images → (B, C3, h, w) shared trunk map (normalised inside)."""
        feature_map: Tensor = self.backbone(self.normalization(images))
        return feature_map

    def branch_maps(self, feature_map: Tensor) -> tuple[Tensor, ...]:
        """Trunk map → the 8 head inputs (B, C, h_i, w) in `HEAD_NAMES` order."""
        global_map: Tensor = self.b1(feature_map)
        two_part_map: Tensor = self.b2(feature_map)
        three_part_map: Tensor = self.b3(feature_map)
        return (
            global_map,
            two_part_map,
            three_part_map,
            *split_rows(two_part_map, 2),
            *split_rows(three_part_map, 3),
        )

    def forward_head(self, feature_map: Tensor, targets: Tensor | None = None) -> ModelOutput:
        """(B, C3, h, w) trunk map, optional targets (B,) → `ModelOutput` (see the class)."""
        maps = self.branch_maps(feature_map)
        heads = self.heads()
        if not self.training:
            embedding = torch.cat([head.embed(m) for head, m in zip(heads, maps, strict=True)], 1)
            return ModelOutput(embedding=embedding)
        outputs = [head(m, targets) for head, m in zip(heads, maps, strict=True)]
        features = [metric for _, metric, _, _ in outputs]
        return ModelOutput(
            embedding=torch.cat([embedding for embedding, _, _, _ in outputs], dim=1),
            logits=tuple(logits for _, _, logits, _ in outputs),
            class_scores=tuple(scores for _, _, _, scores in outputs),
            metric_features=(
                features[0],
                features[1],
                features[2],
                torch.cat(features[3:5], dim=1),
                torch.cat(features[5:8], dim=1),
            ),
        )

    def forward(self, images: Tensor, targets: Tensor | None = None) -> ModelOutput:
        """(B, 3, H, W) 0-255 images, optional targets (B,) → `ModelOutput`."""
        return self.forward_head(self.forward_features(images), targets)

    def forward_scores(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) 0-255 images → embedding (B, 8·D) and the 8 heads' margin-free class
        scores (B, K) in either mode (a distillation teacher's output)."""
        maps = self.branch_maps(self.forward_features(images))
        outputs = [head(m) for head, m in zip(self.heads(), maps, strict=True)]
        return ModelOutput(
            embedding=torch.cat([embedding for embedding, _, _, _ in outputs], dim=1),
            class_scores=tuple(scores for _, _, _, scores in outputs),
        )
