"""Loss config: each term has `enabled` and `weight`; the loss sums the enabled terms, weighted."""

from typing import Literal, Self

from pydantic import Field, model_validator

from reid_platform.config.base import Float, Section


class CrossEntropyConfig(Section):
    """Softmax cross-entropy over the classifier logits, with label smoothing `epsilon`."""

    enabled: bool = True
    weight: Float = Field(1.0, ge=0.0)
    epsilon: Float = Field(0.1, ge=0.0, lt=1.0)


class TripletConfig(Section):
    """Triplet loss = a distance, a miner and a margin rule (composed, not flagged).

    `miner: hard` is batch-hard mining, `weighted` the softmax-weighted (regularised) variant;
    `margin_kind: soft` uses log(1 + exp(d_ap − d_an)) and ignores `margin`. `cosine` is
    1 − cos; the reference's `NORM_FEAT` distance 2 − 2cos is `squared_euclidean` with
    `normalize_features: true`.
    """

    enabled: bool = False
    weight: Float = Field(1.0, ge=0.0)
    margin_kind: Literal["fixed", "soft"] = "fixed"
    margin: Float = Field(0.3, ge=0.0)
    miner: Literal["hard", "weighted"] = "hard"
    distance: Literal["euclidean", "squared_euclidean", "cosine"] = "euclidean"
    normalize_features: bool = False


class PairwiseMarginConfig(Section):
    """Pairwise circle or pairwise CosFace loss over the batch embeddings."""

    enabled: bool = False
    weight: Float = Field(1.0, ge=0.0)
    scale: Float = Field(64.0, gt=0.0)
    margin: Float = Field(0.25, ge=0.0)


class LossesConfig(Section):
    """All loss terms; at least one must be enabled."""

    cross_entropy: CrossEntropyConfig = CrossEntropyConfig()
    triplet: TripletConfig = TripletConfig()
    pairwise_circle: PairwiseMarginConfig = PairwiseMarginConfig()
    pairwise_cosface: PairwiseMarginConfig = PairwiseMarginConfig(scale=64.0, margin=0.35)

    @model_validator(mode="after")
    def _some_loss(self) -> Self:
        terms = (self.cross_entropy, self.triplet, self.pairwise_circle, self.pairwise_cosface)
        if not any(term.enabled for term in terms):
            raise ValueError("enable at least one loss term")
        return self
