"""Identity classifier layers: features (B, D) and optional targets (B,) → (logits, scores).

Importing this package registers every layer in `CLASSIFIERS` under its config name
(`model.classifier.kind`): linear, cosface, arcface, circle. Each returns
`(logits, scores)`, both (B, num_classes): `logits` feed the cross-entropy loss and carry the
margin when targets are given; `scores` never carry a margin (accuracy, distillation).
"""

from reid_platform.modeling.classifiers.arcface import ArcFaceClassifier
from reid_platform.modeling.classifiers.base import CosineClassifier, target_mask
from reid_platform.modeling.classifiers.circle import CircleSoftmaxClassifier
from reid_platform.modeling.classifiers.cosface import CosFaceClassifier
from reid_platform.modeling.classifiers.linear import LinearClassifier

__all__ = [
    "ArcFaceClassifier",
    "CircleSoftmaxClassifier",
    "CosFaceClassifier",
    "CosineClassifier",
    "LinearClassifier",
    "target_mask",
]
