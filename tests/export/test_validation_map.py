"""Validation mAP from onnxruntime embeddings equals the PyTorch model's, through the evaluator."""

from collections.abc import Callable

import pytest
from torch import nn

from reid_platform.evaluation import DistanceMetric, Evaluator, extract_features, l2_normalize
from reid_platform.evaluation.features import FeatureSet
from reid_platform.export import LabeledImages, OnnxExport, OnnxRuntimeEmbedder, validation_map

ExportedVariant = Callable[[str], tuple[nn.Module, OnnxExport]]
QueryGallery = tuple[LabeledImages, LabeledImages]


@pytest.mark.parametrize(
    ("name", "metric"), [("gem_learnable", "cosine"), ("reduction", "euclidean")]
)
def test_onnx_map_equals_pytorch_map(
    exported_variant: ExportedVariant,
    query_gallery: QueryGallery,
    name: str,
    metric: DistanceMetric,
) -> None:
    model, exported = exported_variant(name)
    query, gallery = query_gallery
    evaluator = Evaluator(metric=metric)
    maps = validation_map(
        OnnxRuntimeEmbedder(exported.path),
        model,
        query,
        gallery,
        evaluator=evaluator,
        normalized=exported.normalized,
        batch_size=5,
    )
    # Embeddings agree to ~1e-7 and no two gallery distances of a query are that close, so
    # the rankings, hence the mAPs, are identical.
    assert abs(maps.difference) <= 1e-6, maps
    assert 0.0 < maps.pytorch_map <= 1.0

    # The PyTorch side is the evaluator's own feature extraction.
    features = [extract_features(model, images.batches(4)) for images in (query, gallery)]
    if exported.normalized:
        features = [FeatureSet(l2_normalize(f.features), f.pids, f.camids, ()) for f in features]
    assert evaluator.evaluate(*features).ranking.mAP == maps.pytorch_map
