"""Loss config → `ReidLoss` (the only place in this stage that reads a config)."""

import logging

from torch import nn

from reid_platform.config.distillation import DistillationConfig
from reid_platform.config.losses import LossesConfig, TripletConfig
from reid_platform.losses.combined import LossTerm, ReidLoss
from reid_platform.losses.cross_entropy import CrossEntropyLoss
from reid_platform.losses.distances import (
    CosineDistance,
    Distance,
    EuclideanDistance,
    NormalizedDistance,
    SquaredEuclideanDistance,
)
from reid_platform.losses.distillation import (
    DistillationLoss,
    LogitL1Loss,
    PKTLoss,
    SymmetricKLLoss,
)
from reid_platform.losses.miners import BatchHardMiner, Miner, WeightedMiner
from reid_platform.losses.pairwise_circle import PairwiseCircleLoss
from reid_platform.losses.pairwise_cosface import PairwiseCosFaceLoss
from reid_platform.losses.triplet import TripletLoss

logger = logging.getLogger(__name__)

_DISTANCES: dict[str, type[Distance]] = {
    "euclidean": EuclideanDistance,
    "squared_euclidean": SquaredEuclideanDistance,
    "cosine": CosineDistance,
}
_MINERS: dict[str, type[Miner]] = {"hard": BatchHardMiner, "weighted": WeightedMiner}


def build_triplet(config: TripletConfig) -> TripletLoss:
    """The triplet loss of `losses.triplet` (its `enabled` and `weight` are not read here)."""
    distance: Distance = _DISTANCES[config.distance]()
    if config.normalize_features:
        distance = NormalizedDistance(distance)
    margin = None if config.margin_kind == "soft" else config.margin
    return TripletLoss(distance=distance, miner=_MINERS[config.miner](), margin=margin)


def build_loss(config: LossesConfig) -> ReidLoss:
    """The enabled terms of `config`, keyed `cross_entropy`, `triplet`, `pairwise_circle`,
    `pairwise_cosface`, each with its weight."""
    terms: dict[str, LossTerm] = {}
    if config.cross_entropy.enabled:
        ce = config.cross_entropy
        terms["cross_entropy"] = LossTerm(
            loss=CrossEntropyLoss(epsilon=ce.epsilon), weight=ce.weight, source="logits"
        )
    if config.triplet.enabled:
        terms["triplet"] = LossTerm(
            loss=build_triplet(config.triplet),
            weight=config.triplet.weight,
            source="metric_features",
        )
    if config.pairwise_circle.enabled:
        circle = config.pairwise_circle
        terms["pairwise_circle"] = LossTerm(
            loss=PairwiseCircleLoss(scale=circle.scale, margin=circle.margin),
            weight=circle.weight,
            source="metric_features",
        )
    if config.pairwise_cosface.enabled:
        cosface = config.pairwise_cosface
        terms["pairwise_cosface"] = LossTerm(
            loss=PairwiseCosFaceLoss(scale=cosface.scale, margin=cosface.margin),
            weight=cosface.weight,
            source="metric_features",
        )
    loss = ReidLoss(terms)
    logger.info("loss terms: %s", loss.extra_repr())
    return loss


def build_distillation_loss(config: DistillationConfig) -> DistillationLoss:
    """The active distillation terms of `config`: `distill_logit` (L1 or FastReID's symmetric
    KL on class scores) and `distill_pkt`, each with its weight."""
    logit = config.logit
    logit_loss: nn.Module | None = None
    if logit.active:
        logit_loss = (
            SymmetricKLLoss(temperature=logit.jsdiv.temperature)
            if logit.kind == "jsdiv"
            else LogitL1Loss()
        )
    loss = DistillationLoss(
        logit_loss=logit_loss,
        logit_weight=logit.weight,
        pkt_loss=PKTLoss() if config.pkt.active else None,
        pkt_weight=config.pkt.weight,
    )
    logger.info("distillation terms: %s", loss.extra_repr())
    return loss
