"""Evaluation during training: the validation split every `training.eval_period` epochs, and
the test split once at the end (rank 0 only).

The validation split holds identities carved out of the training set, so evaluating on it
never looks at the test split; the test evaluation reuses the last validation features only
to choose the DSR fusion weight, as `reid eval` does. Metrics are fractions in [0, 1].
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from reid_platform import metric_names
from reid_platform.config import ReidConfig
from reid_platform.data.build import ReidData, build_test_loader
from reid_platform.data.records import Split
from reid_platform.evaluation.build import build_evaluator
from reid_platform.evaluation.evaluator import Evaluator
from reid_platform.evaluation.features import FeatureSet, extract_features
from reid_platform.evaluation.model_evaluation import (
    DsrSettings,
    ModelEvaluation,
    evaluate_feature_sets,
)
from reid_platform.evaluation.report_files import write_report_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationResult:
    """The validation metrics (`eval/*`) and the features they came from."""

    metrics: dict[str, float]
    query: FeatureSet
    gallery: FeatureSet


@dataclass(frozen=True)
class FinalEvaluation:
    """The `test/*` metrics of every test dataset and the report files written for them."""

    metrics: dict[str, float]
    files: list[Path]


class TrainingEvaluator:
    """Extracts features with the bare (unwrapped) model on `device` and evaluates them.

    The model must not be a DDP wrapper: only rank 0 evaluates, and a DDP forward would wait
    for the other ranks' buffer broadcast.
    """

    def __init__(self, config: ReidConfig, data: ReidData, *, device: str) -> None:
        self.config = config
        self.data = data
        self.device = device
        self.evaluator: Evaluator = build_evaluator(config.evaluation, device=device)
        dsr = config.evaluation.dsr
        self.dsr = DsrSettings(dsr.weights, dsr.method, dsr.top_k) if dsr.enabled else None

    @property
    def has_validation(self) -> bool:
        """Whether the data config carved a validation split (with queries and a gallery)."""
        return bool(self.data.val_query.records) and bool(self.data.val_gallery.records)

    def extract(self, model: nn.Module, split: Split) -> FeatureSet:
        """Features of `split` (flip TTA and DSR maps as the evaluation config says)."""
        loader = build_test_loader(self.config.data, self.config.input, split.records)
        return extract_features(
            model,
            loader,
            device=self.device,
            flip=self.config.evaluation.flip_tta,
            spatial=self.dsr is not None,
        )

    def validate(self, model: nn.Module) -> ValidationResult:
        """`eval/*` metrics of `model` on the validation query/gallery split."""
        query = self.extract(model, self.data.val_query)
        gallery = self.extract(model, self.data.val_gallery)
        result = evaluate_feature_sets(
            self.evaluator, query, gallery, dsr=self.dsr, validation=(query, gallery)
        )
        logger.info("validation: %s, mAP %.4f", result.summary, result.report.ranking.mAP)
        return ValidationResult(result.report.metrics(), query, gallery)

    def test(
        self, model: nn.Module, folder: Path, validation: ValidationResult | None
    ) -> FinalEvaluation:
        """`test/*` metrics on every test dataset, with ROC, histogram and rank lists written
        under `folder` (under `folder/<dataset>` when there are several)."""
        names = _dataset_names([splits.name for splits in self.data.test])
        many = len(names) > 1
        metrics: dict[str, float] = {}
        files: list[Path] = []
        for name, splits in zip(names, self.data.test, strict=True):
            query, gallery = self.extract(model, splits.query), self.extract(model, splits.gallery)
            result = self._evaluate_test(query, gallery, validation)
            logger.info("test %s: %s, mAP %.4f", name, result.summary, result.report.ranking.mAP)
            for metric, value in result.report.metrics().items():
                metrics[metric_names.test_metric(metric, name if many else None)] = value
            files += write_report_files(
                result.report,
                query,
                gallery,
                folder / name if many else folder,
                rank_list_queries=self.config.evaluation.rank_list_queries,
            )
        return FinalEvaluation(metrics, files)

    def _evaluate_test(
        self, query: FeatureSet, gallery: FeatureSet, validation: ValidationResult | None
    ) -> ModelEvaluation:
        pair = (validation.query, validation.gallery) if validation is not None else None
        return evaluate_feature_sets(self.evaluator, query, gallery, dsr=self.dsr, validation=pair)


def _dataset_names(names: Sequence[str]) -> list[str]:
    """Unique folder/metric names: a repeated dataset name gets `_<index>` appended."""
    unique: list[str] = []
    for index, name in enumerate(names):
        unique.append(name if name not in unique else f"{name}_{index}")
    return unique
