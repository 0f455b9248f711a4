"""One evaluation: query and gallery features → post-processing → distances → metrics and ROC.

The order follows the reference evaluator (notes §3.1): average query expansion on the features,
then the distance (or k-reciprocal re-ranking, which computes its own), then CMC/mAP/mINP and the
ROC on the resulting matrix. Every metric is keyed by its name in `reid_platform.metric_names`.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from reid_platform import metric_names
from reid_platform.evaluation.distances import DistanceMetric, pairwise_distances
from reid_platform.evaluation.features import FeatureSet
from reid_platform.evaluation.query_expansion import average_query_expansion
from reid_platform.evaluation.ranking import RankingResult, evaluate_ranking
from reid_platform.evaluation.rerank import k_reciprocal_rerank
from reid_platform.evaluation.roc import RocResult, evaluate_roc

Protocol = Literal["market1501", "cuhk03_single_shot"]


@dataclass(frozen=True, slots=True)
class RerankSettings:
    """k-reciprocal re-ranking parameters (Zhong et al.; defaults 20, 6, 0.3)."""

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3


@dataclass(frozen=True, slots=True)
class QueryExpansionSettings:
    """Average query expansion: `times` rounds over the top `k` neighbours weighted by sim^α."""

    times: int = 1
    k: int = 10
    alpha: float = 3.0


@dataclass(frozen=True)
class EvaluationReport:
    """What one evaluation produced.

    distmat: (q, g) float32 final distances (after any re-ranking or DSR fusion).
    ranking / roc: the metric results on `distmat`.
    """

    distmat: np.ndarray
    ranking: RankingResult
    roc: RocResult

    def metrics(self) -> dict[str, float]:
        """The logged metrics: `eval/rank1` … `eval/tar_at_far_1e-2`, fractions in [0, 1]."""
        values = {metric_names.rank_metric(k): self.ranking.rank(k) for k in metric_names.CMC_RANKS}
        values[metric_names.MAP] = self.ranking.mAP
        values[metric_names.MINP] = self.ranking.mINP
        for far in metric_names.FAR_TARGETS:
            values[metric_names.tar_at_far_metric(far)] = self.roc.tar_at_far[far]
        return values

    def per_query_average_precision(self) -> np.ndarray:
        """(q,) AP per query, NaN for queries skipped for want of a match."""
        out = np.full(self.ranking.num_queries, np.nan)
        out[self.ranking.valid_queries] = self.ranking.average_precision
        return out


@dataclass(frozen=True)
class Evaluator:
    """Distances, optional AQE and re-ranking, then metrics; see the module docstring.

    `device` runs the distance products, the neighbour search and the expansion (cpu or cuda).
    """

    metric: DistanceMetric = "cosine"
    max_rank: int = 50
    protocol: Protocol = "market1501"
    rerank: RerankSettings | None = None
    query_expansion: QueryExpansionSettings | None = None
    device: str = "cpu"

    def distances(self, query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(q, d), (g, d) features → (q, g) float32 distances after AQE and re-ranking."""
        if self.query_expansion is not None:
            expansion = self.query_expansion
            query, gallery = average_query_expansion(
                query,
                gallery,
                times=expansion.times,
                k=expansion.k,
                alpha=expansion.alpha,
                device=self.device,
            )
        if self.rerank is not None:
            return k_reciprocal_rerank(
                query,
                gallery,
                metric=self.metric,
                k1=self.rerank.k1,
                k2=self.rerank.k2,
                lambda_value=self.rerank.lambda_value,
                device=self.device,
            )
        return pairwise_distances(query, gallery, self.metric, device=self.device)

    def evaluate_distances(
        self,
        distmat: np.ndarray,
        q_pids: np.ndarray,
        g_pids: np.ndarray,
        q_camids: np.ndarray,
        g_camids: np.ndarray,
    ) -> EvaluationReport:
        """Metrics and ROC of a given (q, g) distance matrix."""
        ranking = evaluate_ranking(
            distmat, q_pids, g_pids, q_camids, g_camids, max_rank=self.max_rank,
            protocol=self.protocol,
        )  # fmt: skip
        roc = evaluate_roc(distmat, q_pids, g_pids, q_camids, g_camids)
        return EvaluationReport(distmat=distmat, ranking=ranking, roc=roc)

    def evaluate(self, query: FeatureSet, gallery: FeatureSet) -> EvaluationReport:
        """Evaluate query features against gallery features."""
        distmat = self.distances(query.features, gallery.features)
        return self.evaluate_distances(
            distmat, query.pids, gallery.pids, query.camids, gallery.camids
        )
