"""Evaluation config → `Evaluator` (the one place that reads `EvaluationConfig`)."""

from reid_platform.config.evaluation import EvaluationConfig
from reid_platform.evaluation.evaluator import Evaluator, QueryExpansionSettings, RerankSettings


def build_evaluator(config: EvaluationConfig, *, device: str = "cpu") -> Evaluator:
    """The evaluator `config` describes; disabled post-processing steps are left out."""
    rerank = config.rerank
    expansion = config.query_expansion
    return Evaluator(
        metric=config.metric,
        max_rank=config.max_rank,
        protocol=config.protocol,
        rerank=RerankSettings(rerank.k1, rerank.k2, rerank.lambda_value)
        if rerank.enabled
        else None,
        query_expansion=(
            QueryExpansionSettings(expansion.times, expansion.k, expansion.alpha)
            if expansion.enabled
            else None
        ),
        device=device,
    )
