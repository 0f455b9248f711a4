"""Distillation losses: a student matches a frozen teacher's class scores and embedding geometry.

The objective of seed Eq. 10 is `L_reid + w_logit·L_logit + α·L_PKT`; this module supplies the
two distillation terms (`DistillationLoss`), the training loop adds the student's own `ReidLoss`.
Every loss detaches the teacher and computes in float32 with autocast off, so the value does not
depend on AMP and the teacher never receives gradients.
"""

from typing import Protocol

import torch
from torch import Tensor, nn
from torch.nn.functional import kl_div, l1_loss, log_softmax, softmax


class DistillationOutput(Protocol):
    """What distillation reads of `reid_platform.modeling.ModelOutput` (matched structurally, so
    this stage does not import the modeling stage).

    embedding: (B, D) the retrieval feature.
    class_scores: per classifier head, (B, C) scaled scores without margin.
    """

    @property
    def embedding(self) -> Tensor: ...

    @property
    def class_scores(self) -> tuple[Tensor, ...]: ...


class PKTLoss(nn.Module):
    """Probabilistic knowledge transfer (Passalis & Tefas 2018) with the cosine kernel.

    Per anchor i, the teacher's and the student's cosine kernels `(cos + 1) / 2` over the other
    samples are normalised into distributions p_{·|i} and q_{·|i}; the loss is KL(p‖q) averaged
    over the B anchors. Self-pairs are excluded (as in the paper; the authors' code keeps them
    and averages over B², which makes it ≈ 1/B of this value). Only the geometry is compared, so
    the two embedding sizes may differ and a positive rescaling of any row changes nothing.

    Args:
        eps: added to the row norms and inside the logarithms (the reference's 1e-7).
    """

    def __init__(self, *, eps: float = 1e-7) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"PKT eps must be > 0, got {eps}")
        self.eps = eps

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """student: (B, D_s), teacher: (B, D_t) embeddings with B ≥ 2 → scalar (float32)."""
        if student.dim() != 2 or teacher.dim() != 2 or student.shape[0] != teacher.shape[0]:
            raise ValueError(
                f"PKT needs student (B, D_s) and teacher (B, D_t) with the same B, "
                f"got {tuple(student.shape)} and {tuple(teacher.shape)}"
            )
        batch_size = student.shape[0]
        if batch_size < 2:
            raise ValueError(f"PKT needs a batch of at least 2 samples, got {batch_size}")
        # 1e-7 underflows in float16, and the kernel is flat (entries ½–1), so float32 throughout.
        with torch.autocast(device_type=student.device.type, enabled=False):
            p = self._conditional(teacher.detach().float())
            q = self._conditional(student.float())
            # The diagonal of p is 0, so self-pairs add nothing to the sum.
            terms = p * (torch.log(p + self.eps) - torch.log(q + self.eps))
            return terms.sum() / batch_size

    def _conditional(self, features: Tensor) -> Tensor:
        """(B, D) → (B, B): row i is p_{j|i}, zero on the diagonal, summing to 1 over j ≠ i."""
        unit = features / (features.norm(dim=1, keepdim=True) + self.eps)
        kernel = (unit @ unit.T + 1.0) / 2.0
        # A product rather than an in-place write: the kernel is part of the autograd graph.
        off_diagonal = 1.0 - torch.eye(kernel.shape[0], device=kernel.device, dtype=kernel.dtype)
        kernel = kernel * off_diagonal
        # A row sums to 0 only when every other sample is antipodal to the anchor; the clamp
        # makes that row all-zero (no contribution) instead of 0/0.
        row_sums = kernel.sum(dim=1, keepdim=True).clamp_min(torch.finfo(kernel.dtype).tiny)
        return kernel / row_sums

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"


def _check_scores(student: Tensor, teacher: Tensor, loss: str) -> None:
    """Both (B, C) with the same shape: logits are matched class index by class index."""
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"{loss} needs student and teacher class scores of the same shape (B, C), "
            f"got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )


class LogitL1Loss(nn.Module):
    """Seed Eq. 8: mean over the B×C entries of |student − teacher| class scores.

    The mean (not the sum) keeps the gradient per sample at L1 norm 1/B whatever C and the
    classifier scale, so a weight of 1 balances cross-entropy for any number of classes.
    """

    def forward(self, student_scores: Tensor, teacher_scores: Tensor) -> Tensor:
        """student_scores, teacher_scores: (B, C) margin-free scaled scores → scalar (float32)."""
        _check_scores(student_scores, teacher_scores, "the logit L1 loss")
        with torch.autocast(device_type=student_scores.device.type, enabled=False):
            return l1_loss(student_scores.float(), teacher_scores.detach().float())


class SymmetricKLLoss(nn.Module):
    """FastReID's "JS-div" (`meta_arch/distiller.py`): the mean of KL(p_t‖p_s) and KL(p_s‖p_t)
    between temperature-softened class distributions, each summed over the batch and classes,
    times T², divided by B. It is the symmetrised KL, not Jensen–Shannon (no mixture).

    The teacher is detached; the student receives gradients through both terms, also where it
    is the target of `kl_div` (as in FastReID).

    Args:
        temperature: T > 0; FastReID uses 16.
    """

    def __init__(self, *, temperature: float = 16.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"the KL temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, student_scores: Tensor, teacher_scores: Tensor) -> Tensor:
        """student_scores, teacher_scores: (B, C) margin-free scaled scores → scalar (float32)."""
        _check_scores(student_scores, teacher_scores, "the symmetric KL loss")
        with torch.autocast(device_type=student_scores.device.type, enabled=False):
            student = student_scores.float()
            teacher = teacher_scores.detach().float()
            return (self._kldiv(student, teacher) + self._kldiv(teacher, student)) / 2

    def _kldiv(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """KL(softmax(targets/T) ‖ softmax(inputs/T)) summed, · T² / B (FastReID's `_kldiv`)."""
        t = self.temperature
        log_probs = log_softmax(inputs / t, dim=1)
        target_probs = softmax(targets / t, dim=1)
        # T² keeps the gradient's size independent of T (Hinton et al. 2015, §2).
        return kl_div(log_probs, target_probs, reduction="sum") * (t * t) / inputs.shape[0]

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:g}"


class DistillationLoss(nn.Module):
    """The distillation terms of the objective, named like `ReidLoss`'s terms; the training loop
    adds them to the student's own re-id loss.

    `distill_logit`: weight · mean over classifier heads of `logit_loss(student_h, teacher_h)`
    (heads matched in order, so both models need the same number). `distill_pkt`: weight ·
    `pkt_loss(student.embedding, teacher.embedding)`. A term is active when its loss is given
    and its weight is > 0; inactive terms are absent from the result.

    Args:
        logit_loss: (B, C), (B, C) → scalar, e.g. `LogitL1Loss` or `SymmetricKLLoss`; or None.
        logit_weight: the factor of the logit term (≥ 0).
        pkt_loss: (B, D_s), (B, D_t) → scalar, e.g. `PKTLoss`; or None.
        pkt_weight: the factor of the embedding term (≥ 0; α of Eq. 10).
    """

    def __init__(
        self,
        *,
        logit_loss: nn.Module | None,
        logit_weight: float,
        pkt_loss: nn.Module | None,
        pkt_weight: float,
    ) -> None:
        super().__init__()
        if logit_weight < 0 or pkt_weight < 0:
            raise ValueError(
                f"distillation weights must be ≥ 0, got logit {logit_weight:g}, pkt {pkt_weight:g}"
            )
        # Inactive losses are dropped so that the module's repr shows what is optimised.
        self.logit_loss = logit_loss if logit_weight > 0 else None
        self.pkt_loss = pkt_loss if pkt_weight > 0 else None
        if self.logit_loss is None and self.pkt_loss is None:
            raise ValueError(
                "distillation needs at least one term: a logit loss or a PKT loss with weight > 0"
            )
        self.logit_weight = logit_weight
        self.pkt_weight = pkt_weight

    def forward(
        self, student: DistillationOutput, teacher: DistillationOutput
    ) -> dict[str, Tensor]:
        """student, teacher: training forward passes on the same batch (`ModelOutput`s).

        Returns {"distill_logit": scalar, "distill_pkt": scalar}, each only when active.
        """
        result: dict[str, Tensor] = {}
        if self.logit_loss is not None:
            result["distill_logit"] = self._logit_term(student, teacher, self.logit_loss)
        if self.pkt_loss is not None:
            pkt = self.pkt_loss(student.embedding, teacher.embedding)
            result["distill_pkt"] = pkt * self.pkt_weight
        return result

    def _logit_term(
        self, student: DistillationOutput, teacher: DistillationOutput, loss: nn.Module
    ) -> Tensor:
        if not student.class_scores or not teacher.class_scores:
            raise ValueError(
                "the distill_logit loss needs the student and the teacher to produce class "
                "scores (are both in training mode with a classifier head?), got "
                f"{len(student.class_scores)} and {len(teacher.class_scores)} heads"
            )
        if len(student.class_scores) != len(teacher.class_scores):
            raise ValueError(
                f"the distill_logit loss matches classifier heads in order, but the student has "
                f"{len(student.class_scores)} and the teacher {len(teacher.class_scores)}"
            )
        pairs = zip(student.class_scores, teacher.class_scores, strict=True)
        values = torch.stack([loss(s, t) for s, t in pairs])
        return values.mean() * self.logit_weight

    def extra_repr(self) -> str:
        terms = []
        if self.logit_loss is not None:
            terms.append(f"distill_logit: weight={self.logit_weight:g}")
        if self.pkt_loss is not None:
            terms.append(f"distill_pkt: weight={self.pkt_weight:g}")
        return ", ".join(terms)
