"""Evaluation config: distance, test-time flip, re-ranking, query expansion, DSR, ROC."""

from typing import Literal

from pydantic import Field

from reid_platform.config.base import Float, Section


class RerankConfig(Section):
    """k-reciprocal re-ranking (k1, k2, λ)."""

    enabled: bool = False
    k1: int = Field(20, ge=1)
    k2: int = Field(6, ge=1)
    lambda_value: Float = Field(0.3, ge=0.0, le=1.0)


class QueryExpansionConfig(Section):
    """Average query expansion: `times` rounds over the top `k` neighbours weighted by α.

    The defaults are FastReID's config defaults (`TEST.AQE.QE_TIME/QE_K/ALPHA` = 1, 5, 3.0), so
    switching AQE on gives what it gives there; its `aqe()` function (and
    `average_query_expansion`) default to k = 10.
    """

    enabled: bool = False
    times: int = Field(1, ge=1)
    k: int = Field(5, ge=1)
    alpha: Float = Field(3.0, ge=0.0)


class DSRConfig(Section):
    """Deep spatial reconstruction fused with the global distance; weight chosen on validation.

    `method: reconstruction` is the paper's ridge reconstruction residual, `best_match` the
    reference toolbox's per-location best cosine match; each query's `top_k` gallery candidates
    by global distance are scored.
    """

    enabled: bool = False
    weights: tuple[Float, ...] = Field((0.0, 0.25, 0.5, 0.75, 1.0), min_length=1)
    method: Literal["reconstruction", "best_match"] = "reconstruction"
    top_k: int = Field(100, ge=1)


class EvaluationConfig(Section):
    metric: Literal["cosine", "euclidean", "euclidean_squared"] = "cosine"
    flip_tta: bool = False
    max_rank: int = Field(50, ge=1)
    protocol: Literal["market1501", "cuhk03_single_shot"] = "market1501"
    rank_list_queries: int = Field(8, ge=0)
    rerank: RerankConfig = RerankConfig()
    query_expansion: QueryExpansionConfig = QueryExpansionConfig()
    dsr: DSRConfig = DSRConfig()
