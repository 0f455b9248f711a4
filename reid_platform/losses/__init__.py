"""Losses: distances and miners composed into triplet and pairwise losses, cross-entropy with
label smoothing, the distillation terms (logit L1 / symmetric KL, PKT), and the weighted
combination the training loop optimises.

Components take keyword arguments and never see a config; `build_loss` maps `LossesConfig` to a
`ReidLoss`. Classifier margins (CosFace, ArcFace, circle softmax) live in the model's classifier
layer, so cross-entropy reads logits that already carry them.
"""

from reid_platform.losses.build import build_distillation_loss, build_loss, build_triplet
from reid_platform.losses.combined import LossTerm, ReidLoss, TrainingOutput
from reid_platform.losses.cross_entropy import CrossEntropyLoss
from reid_platform.losses.distances import (
    CosineDistance,
    Distance,
    EuclideanDistance,
    NormalizedDistance,
    SquaredEuclideanDistance,
    cosine_distance,
    cosine_similarity_matrix,
    euclidean_distance,
    squared_euclidean_distance,
)
from reid_platform.losses.distillation import (
    DistillationLoss,
    LogitL1Loss,
    PKTLoss,
    SymmetricKLLoss,
)
from reid_platform.losses.miners import BatchHardMiner, MinedDistances, Miner, WeightedMiner
from reid_platform.losses.pairs import pair_masks
from reid_platform.losses.pairwise_circle import PairwiseCircleLoss
from reid_platform.losses.pairwise_cosface import PairwiseCosFaceLoss
from reid_platform.losses.triplet import TripletLoss

__all__ = [
    "BatchHardMiner",
    "CosineDistance",
    "CrossEntropyLoss",
    "Distance",
    "DistillationLoss",
    "EuclideanDistance",
    "LogitL1Loss",
    "LossTerm",
    "MinedDistances",
    "Miner",
    "NormalizedDistance",
    "PKTLoss",
    "PairwiseCircleLoss",
    "PairwiseCosFaceLoss",
    "ReidLoss",
    "SquaredEuclideanDistance",
    "SymmetricKLLoss",
    "TrainingOutput",
    "TripletLoss",
    "WeightedMiner",
    "build_distillation_loss",
    "build_loss",
    "build_triplet",
    "cosine_distance",
    "cosine_similarity_matrix",
    "euclidean_distance",
    "pair_masks",
    "squared_euclidean_distance",
]
