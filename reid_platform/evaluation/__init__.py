"""Evaluation: features (+flip TTA), distances, re-ranking, query expansion, DSR, metrics
(CMC, mAP, mINP, ROC), large-gallery retrieval, and rank-list / ROC figures.

    evaluator = build_evaluator(config.evaluation, device="cpu")
    query = extract_features(model, query_loader, flip=True)
    report = evaluator.evaluate(query, extract_features(model, gallery_loader, flip=True))
    report.metrics()   # {"eval/rank1": ..., "eval/mAP": ..., "eval/tar_at_far_1e-4": ...}
"""

from reid_platform.evaluation.build import build_evaluator
from reid_platform.evaluation.distances import (
    DistanceMetric,
    distance_chunks,
    l2_normalize,
    pairwise_distances,
)
from reid_platform.evaluation.evaluator import (
    EvaluationReport,
    Evaluator,
    QueryExpansionSettings,
    RerankSettings,
)
from reid_platform.evaluation.features import FeatureSet, extract_features
from reid_platform.evaluation.model_evaluation import (
    DsrSettings,
    ModelEvaluation,
    evaluate_feature_sets,
)
from reid_platform.evaluation.query_expansion import average_query_expansion
from reid_platform.evaluation.ranking import (
    RankingAccumulator,
    RankingProtocol,
    RankingResult,
    evaluate_ranking,
)
from reid_platform.evaluation.rerank import k_reciprocal_rerank
from reid_platform.evaluation.retrieval import GalleryIndex
from reid_platform.evaluation.retrieval_metrics import evaluate_streaming, evaluate_top_k
from reid_platform.evaluation.roc import RocResult, evaluate_roc

__all__ = [
    "DistanceMetric",
    "DsrSettings",
    "EvaluationReport",
    "Evaluator",
    "FeatureSet",
    "GalleryIndex",
    "ModelEvaluation",
    "QueryExpansionSettings",
    "RankingAccumulator",
    "RankingProtocol",
    "RankingResult",
    "RerankSettings",
    "RocResult",
    "average_query_expansion",
    "build_evaluator",
    "distance_chunks",
    "evaluate_feature_sets",
    "evaluate_ranking",
    "evaluate_roc",
    "evaluate_streaming",
    "evaluate_top_k",
    "extract_features",
    "k_reciprocal_rerank",
    "l2_normalize",
    "pairwise_distances",
]
