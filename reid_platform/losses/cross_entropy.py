"""Softmax cross-entropy with the reference's label smoothing."""

from torch import Tensor, nn
from torch.nn.functional import log_softmax


class CrossEntropyLoss(nn.Module):
    """Cross-entropy against a smoothed target: q = 1 − ε on the label, ε / (C − 1) elsewhere.

    This is the reference's (and the BoT paper's) smoothing; `torch.nn.CrossEntropyLoss`'s
    `label_smoothing=ε` puts ε / C on every class instead, so its target keeps 1 − ε + ε / C.

    Reduction: the plain mean over the batch. The reference divides the batch sum by the number
    of non-zero per-sample losses; in floating point a per-sample cross-entropy is practically
    never exactly zero, so the two agree, and the mean needs no data-dependent count (a host
    synchronisation and a graph break under `torch.compile`) and never re-weights the batch.

    The logits are those the model produced for training, with any classifier margin and scale
    (CosFace, ArcFace, circle softmax) already applied.

    Args:
        epsilon: the smoothing ε in [0, 1).
    """

    def __init__(self, *, epsilon: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """logits: (N, C) with C ≥ 2; targets: (N,) class indices in [0, C) → scalar loss."""
        if logits.dim() != 2 or targets.shape != (logits.shape[0],):
            raise ValueError(
                f"cross-entropy needs logits (N, C) and targets (N,), "
                f"got {tuple(logits.shape)} and {tuple(targets.shape)}"
            )
        num_classes = logits.shape[1]
        if num_classes < 2:
            raise ValueError(f"cross-entropy needs at least 2 classes, got {num_classes}")
        log_probs = log_softmax(logits.float(), dim=1)
        target_log_prob = log_probs.gather(1, targets.long().unsqueeze(1)).squeeze(1)
        # Σ_j q_j log p_j with q = 1 − ε on the target and ε / (C − 1) on the other C − 1.
        others = log_probs.sum(dim=1) - target_log_prob
        per_sample = -(1.0 - self.epsilon) * target_log_prob
        if self.epsilon > 0:
            per_sample = per_sample - self.epsilon / (num_classes - 1) * others
        return per_sample.mean()

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon:g}"
