"""Evaluating extracted feature sets, with deep spatial reconstruction when asked.

DSR's fusion weight is chosen on the validation split (held out from the training identities)
by mAP, then applied unchanged to the test split: the test set never selects anything.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.dsr import (
    DsrDistances,
    choose_dsr_weight,
    dsr_distances,
    fuse_dsr,
)
from reid_platform.evaluation.evaluator import EvaluationReport, Evaluator
from reid_platform.evaluation.features import FeatureSet
from reid_platform.evaluation.ranking import evaluate_ranking


@dataclass(frozen=True, slots=True)
class DsrSettings:
    """Deep spatial reconstruction: candidate weights to choose from, method, candidates."""

    weights: Sequence[float]
    method: Literal["reconstruction", "best_match"] = "reconstruction"
    top_k: int = 100


@dataclass(frozen=True)
class ModelEvaluation:
    """A report plus how it was made (`summary`: one line, e.g. the DSR weight chosen)."""

    report: EvaluationReport
    summary: str
    dsr_weight: float | None = None


def _spatial(features: FeatureSet) -> np.ndarray:
    if features.spatial is None:
        raise EvaluationError("DSR needs spatial feature maps: extract features with spatial=True")
    return features.spatial


def _dsr(
    evaluator: Evaluator, settings: DsrSettings, query: FeatureSet, gallery: FeatureSet
) -> tuple[np.ndarray, DsrDistances]:
    distmat = evaluator.distances(query.features, gallery.features)
    dsr = dsr_distances(
        _spatial(query),
        _spatial(gallery),
        distmat,
        top_k=settings.top_k,
        method=settings.method,
        device=evaluator.device,
    )
    return distmat, dsr


def choose_weight_on_validation(
    evaluator: Evaluator, settings: DsrSettings, query: FeatureSet, gallery: FeatureSet
) -> float:
    """The DSR weight with the best validation mAP (first of equals)."""
    distmat, dsr = _dsr(evaluator, settings, query, gallery)

    def validation_map(fused: np.ndarray) -> float:
        return evaluate_ranking(fused, query.pids, gallery.pids, query.camids, gallery.camids).mAP

    weight, _scores = choose_dsr_weight(distmat, dsr, validation_map, weights=settings.weights)
    return weight


def evaluate_feature_sets(
    evaluator: Evaluator,
    query: FeatureSet,
    gallery: FeatureSet,
    *,
    dsr: DsrSettings | None = None,
    validation: tuple[FeatureSet, FeatureSet] | None = None,
) -> ModelEvaluation:
    """Evaluate `query` against `gallery`; with `dsr`, the weight comes from `validation`."""
    if dsr is None:
        report = evaluator.evaluate(query, gallery)
        return ModelEvaluation(report, f"{len(query)} queries, {len(gallery)} gallery")
    if validation is None:
        raise EvaluationError("DSR needs a validation split to choose its fusion weight")
    weight = choose_weight_on_validation(evaluator, dsr, *validation)
    distmat, candidates = _dsr(evaluator, dsr, query, gallery)
    fused = fuse_dsr(distmat, candidates, weight)
    report = evaluator.evaluate_distances(
        fused, query.pids, gallery.pids, query.camids, gallery.camids
    )
    summary = (
        f"{len(query)} queries, {len(gallery)} gallery, DSR weight {weight:g} (from validation)"
    )
    return ModelEvaluation(report, summary, dsr_weight=weight)
