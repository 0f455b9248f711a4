"""Metric losses over the global batch: gather every rank's metric features before mining.

With data parallelism each rank sees only its own P×K batch, so batch-hard triplet mining picks
its hardest pairs among B/world_size images. `GlobalBatchObjective` gathers the metric features
(per branch, (B_local, D) → (B_local × world_size, D)) and the targets of all ranks with
`torch.distributed.nn.functional.all_gather`, which keeps the autograd graph: its backward
sums, over ranks, the gradients every rank computes for this rank's rows. Every rank computes
the same global metric loss L, so a rank's features receive world_size × dL/df, and DDP's
gradient averaging divides that by world_size again: the step is that of the global loss.
Classification terms stay local (their logits are per-rank and need no other images).

The losses themselves are unchanged: the objective splits a `ReidLoss` by the source its terms
read and calls each part with the output it needs. Every rank's batch must have the same size
(the self-sharding samplers guarantee it).
"""

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_functional
from torch import Tensor

from reid_platform.losses.combined import LossTerm, ReidLoss, Source, TrainingOutput


@dataclass(frozen=True)
class _MetricFeaturesOnly:
    """A `TrainingOutput` carrying only (gathered) metric features."""

    metric_features: tuple[Tensor, ...]
    logits: tuple[Tensor, ...] = field(default_factory=tuple)


def _part(loss: ReidLoss, source: Source) -> ReidLoss | None:
    """The terms of `loss` that read `source`, as their own `ReidLoss` (None if there are none)."""
    terms = {
        name: LossTerm(loss=module, weight=loss.weights[name], source=source)
        for name, module in loss.losses.items()
        if loss.sources[name] == source
    }
    return ReidLoss(terms) if terms else None


def gather_with_grad(tensor: Tensor) -> Tensor:
    """(B, ...) on every rank → (B × world_size, ...) in rank order, differentiable."""
    return torch.cat(dist_functional.all_gather(tensor), dim=0)


def gather_targets(targets: Tensor) -> Tensor:
    """(B,) labels on every rank → (B × world_size,) in rank order (no gradient)."""
    gathered = [torch.empty_like(targets) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, targets.contiguous())
    return torch.cat(gathered, dim=0)


class GlobalBatchObjective:
    """`loss(output, targets)` with metric terms computed on all ranks' features together.

    Needs an initialised default process group. Returns the same {term: weighted scalar}
    mapping, in the same term order, as `loss` itself.
    """

    def __init__(self, loss: ReidLoss) -> None:
        self.order = list(loss.losses)
        self.local = _part(loss, "logits")
        self.gathered = _part(loss, "metric_features")

    def __call__(self, output: TrainingOutput, targets: Tensor) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        if self.local is not None:
            terms |= self.local(output, targets)
        if self.gathered is not None:
            features = tuple(gather_with_grad(f) for f in output.metric_features)
            terms |= self.gathered(_MetricFeaturesOnly(features), gather_targets(targets))
        return {name: terms[name] for name in self.order}
