"""The re-id model: backbones, aggregation (pooling), necks, classifier layers, architectures.

`build_model(config.model, config.input, num_classes=...)` is the entry point; the models
follow one API (`forward` → `ModelOutput`, `forward_features`, `forward_head`, `embedding_dim`,
`preprocessing`) and never compute losses.
"""

from reid_platform.modeling.baseline import ReidBaselineModel
from reid_platform.modeling.build import build_model
from reid_platform.modeling.mgn import MultipleGranularityNetwork
from reid_platform.modeling.output import ModelOutput, Preprocessing

__all__ = [
    "ModelOutput",
    "MultipleGranularityNetwork",
    "Preprocessing",
    "ReidBaselineModel",
    "build_model",
]
