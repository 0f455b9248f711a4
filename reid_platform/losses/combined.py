"""The training objective: named, weighted loss terms over a model's training output."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor, nn


class TrainingOutput(Protocol):
    """What the losses read of `reid_platform.modeling.ModelOutput` (matched structurally, so
    this stage does not import the modeling stage).

    logits: per classifier head, (N, C) with the classifier margin applied.
    metric_features: per metric-loss branch, (N, D_i).
    """

    @property
    def logits(self) -> tuple[Tensor, ...]: ...

    @property
    def metric_features(self) -> tuple[Tensor, ...]: ...


Source = Literal["logits", "metric_features"]
"""Which tuple of the model output a term consumes."""

_NEEDS = {
    "logits": "classifier logits (is the model in eval mode, or does its head have no classifier?)",
    "metric_features": "metric features (is the model in eval mode?)",
}


@dataclass(frozen=True, slots=True)
class LossTerm:
    """One term of the objective.

    loss: a module (inputs (N, X), targets (N,)) → scalar.
    weight: the factor the term is multiplied by.
    source: `logits` (per classifier head, (N, C)) or `metric_features` (per branch, (N, D_i)).
    """

    loss: nn.Module
    weight: float
    source: Source


class ReidLoss(nn.Module):
    """Named weighted terms of the objective; the training loop sums the returned values.

    Each term is averaged over the tuple it reads (`output.logits` or `output.metric_features`)
    and multiplied by its weight: a baseline model has one tensor in each, MGN has 8 logits
    tensors and 5 metric features, so each of its CE terms counts 1/8 and each triplet term 1/5,
    the reference's fixed MGN weights 0.125 and 0.2.

    Args:
        terms: name → `LossTerm`; the names become the keys of the result and the metric names
            `train/loss_<name>`.
    """

    def __init__(self, terms: Mapping[str, LossTerm]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("a ReidLoss needs at least one term")
        self.losses = nn.ModuleDict({name: term.loss for name, term in terms.items()})
        self.weights = {name: term.weight for name, term in terms.items()}
        self.sources: dict[str, Source] = {name: term.source for name, term in terms.items()}

    def forward(self, output: TrainingOutput, targets: Tensor) -> dict[str, Tensor]:
        """output: a training forward pass (a `ModelOutput`); targets: (N,) class labels.

        Returns {name: weighted scalar} for every term, in the order the terms were given.
        """
        result: dict[str, Tensor] = {}
        for name, loss in self.losses.items():
            source = self.sources[name]
            inputs: tuple[Tensor, ...] = getattr(output, source)
            if not inputs:
                raise ValueError(
                    f"the {name} loss needs the model's {_NEEDS[source]}, "
                    f"but output.{source} is empty"
                )
            values = torch.stack([loss(tensor, targets) for tensor in inputs])
            result[name] = values.mean() * self.weights[name]
        return result

    def extra_repr(self) -> str:
        return ", ".join(
            f"{name}: weight={self.weights[name]:g} on {self.sources[name]}" for name in self.losses
        )
