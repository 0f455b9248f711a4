"""What a re-id model returns and the input it expects (read by transforms, evaluator, exporter)."""

from dataclasses import dataclass, field

from torch import Tensor


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """The input contract of a model.

    Images are RGB, resized to `input_size` (H, W) with `interpolation`, in the 0-255 value
    range (uint8 or float); the model itself subtracts `mean` and divides by `std` (0-255 scale,
    not in place), so callers never normalise.
    """

    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    value_range: tuple[float, float] = (0.0, 255.0)


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """One forward pass.

    embedding: (B, D) the retrieval feature (not L2-normalised; the evaluator decides).
    logits: per classifier head, (B, num_classes) inputs of the cross-entropy loss, with the
        margin applied when targets were given in training; empty in eval mode.
    class_scores: per classifier head, (B, num_classes) scaled scores without margin (accuracy,
        distillation); empty in eval mode.
    metric_features: per metric-loss branch, (B, D_i) features for triplet / pairwise losses;
        empty in eval mode. A baseline model has one of each; MGN has 8 heads and 5 branches.
    """

    embedding: Tensor
    logits: tuple[Tensor, ...] = field(default_factory=tuple)
    class_scores: tuple[Tensor, ...] = field(default_factory=tuple)
    metric_features: tuple[Tensor, ...] = field(default_factory=tuple)
