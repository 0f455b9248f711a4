"""Distillation losses against double-loop oracles, hand-worked cases and the PKT authors' code."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from reid_platform.losses.distillation import (
    DistillationLoss,
    LogitL1Loss,
    PKTLoss,
    SymmetricKLLoss,
)

EPS = 1e-7
Rows = list[list[float]]


def _pkt_conditional(rows: Rows) -> Rows:
    unit = [[v / (math.sqrt(sum(u * u for u in row)) + EPS) for v in row] for row in rows]
    kernel = [[0.0] * len(rows) for _ in rows]
    for i, anchor in enumerate(unit):
        for j, other in enumerate(unit):
            if j != i:
                kernel[i][j] = (sum(a * b for a, b in zip(anchor, other, strict=True)) + 1) / 2
    return [[k / sum(row) for k in row] for row in kernel]


def _pkt_oracle(student: Tensor, teacher: Tensor) -> float:
    """(1/B) Σ_i Σ_{j≠i} p_{j|i} (log(p_{j|i} + eps) − log(q_{j|i} + eps)), notes §2.4."""
    p, q = _pkt_conditional(teacher.double().tolist()), _pkt_conditional(student.double().tolist())
    n = len(p)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if j != i:
                total += p[i][j] * (math.log(p[i][j] + EPS) - math.log(q[i][j] + EPS))
    return total / n


def _l1_oracle(student: Tensor, teacher: Tensor) -> float:
    s, t = student.double().tolist(), teacher.double().tolist()
    total = sum(abs(s[b][c] - t[b][c]) for b in range(len(s)) for c in range(len(s[0])))
    return total / (len(s) * len(s[0]))


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q, strict=True))


def _symmetric_kl_oracle(student: Tensor, teacher: Tensor, temperature: float) -> float:
    """FastReID: ½ Σ_b (KL(p_t‖p_s) + KL(p_s‖p_t)) · T² / B on softmax(scores / T)."""
    total = 0.0
    for s_row, t_row in zip(student.double().tolist(), teacher.double().tolist(), strict=True):
        p_s = _softmax([v / temperature for v in s_row])
        p_t = _softmax([v / temperature for v in t_row])
        total += _kl(p_t, p_s) + _kl(p_s, p_t)
    return total / 2 * temperature**2 / student.shape[0]


def _randn(seed: int, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("batch", "d_s", "d_t"), [(2, 3, 3), (5, 4, 7), (16, 32, 8)])
def test_pkt_matches_loop(seed: int, batch: int, d_s: int, d_t: int) -> None:
    teacher = _randn(seed, batch, d_t)
    # One student unrelated to the teacher, one close to it: large and small losses.
    near = teacher[:, :d_s] if d_s <= d_t else torch.cat([teacher, _randn(9, batch, d_s - d_t)], 1)
    for student in (_randn(seed + 100, batch, d_s), near + 0.3 * _randn(seed + 7, batch, d_s)):
        loss = PKTLoss()(student, teacher)
        assert loss.dtype == torch.float32
        assert loss.item() == pytest.approx(_pkt_oracle(student, teacher), rel=1e-4, abs=1e-7)
        assert loss.item() >= 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("batch", "classes"), [(1, 2), (4, 3), (8, 11)])
def test_logit_losses_match_loops(seed: int, batch: int, classes: int) -> None:
    student, teacher = 5 * _randn(seed, batch, classes), 5 * _randn(seed + 50, batch, classes)
    l1 = LogitL1Loss()(student, teacher)
    assert l1.item() == pytest.approx(_l1_oracle(student, teacher), rel=1e-6)
    for temperature in (1.0, 4.0, 16.0):
        kl = SymmetricKLLoss(temperature=temperature)(student, teacher)
        expected = _symmetric_kl_oracle(student, teacher, temperature)
        assert kl.item() == pytest.approx(expected, rel=1e-4, abs=1e-7)


def _finite_difference(oracle: Callable[[Tensor], float], student: Tensor, h: float) -> Tensor:
    grad = torch.zeros_like(student)
    for index in range(student.numel()):
        step = torch.zeros_like(student).view(-1)
        step[index] = h
        shift = step.view_as(student)
        grad.view(-1)[index] = (oracle(student + shift) - oracle(student - shift)) / (2 * h)
    return grad


@pytest.mark.parametrize(
    ("loss", "oracle"),
    [
        (PKTLoss(), _pkt_oracle),
        (LogitL1Loss(), _l1_oracle),
        (SymmetricKLLoss(temperature=2.0), lambda s, t: _symmetric_kl_oracle(s, t, 2.0)),
    ],
    ids=["pkt", "l1", "symmetric_kl"],
)
def test_student_gradient_is_the_oracle_derivative(
    loss: nn.Module, oracle: Callable[[Tensor, Tensor], float]
) -> None:
    # The KL's second term has the student as kl_div's target: its gradient must flow there too.
    teacher = _randn(3, 4, 3).requires_grad_(True)
    student = _randn(4, 4, 3).requires_grad_(True)
    loss(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    expected = _finite_difference(lambda s: oracle(s, teacher.detach()), student.detach(), 1e-5)
    torch.testing.assert_close(student.grad, expected, rtol=1e-3, atol=1e-6)


def test_pkt_ignores_positive_row_scaling_and_embedding_size() -> None:
    teacher = _randn(0, 12, 5)
    scaled = teacher * (10 * _randn(2, 12, 1).abs() + 0.01)
    rotation = torch.linalg.qr(_randn(1, 5, 5)).Q
    # Same geometry in a wider space: a rotation, then three zero dimensions.
    wider = torch.cat([teacher @ rotation, torch.zeros(12, 3, dtype=torch.float64)], dim=1)
    for student in (teacher, scaled, wider):
        assert abs(PKTLoss()(student, teacher).item()) <= 1e-6
    # Negating some rows (not all: that keeps every cosine) changes the geometry.
    flipped = teacher * torch.tensor([1.0, -1.0] * 6, dtype=torch.float64).unsqueeze(1)
    assert PKTLoss()(flipped, teacher).item() > 1e-3


def test_pkt_row_with_only_antipodal_neighbours_is_finite() -> None:
    # Teacher row 0's kernel is exactly 0 (norms ≫ eps, so cos = −1 exactly in float32):
    # without a guard its p row would be 0/0.
    teacher = torch.tensor([[1024.0, 0.0], [-1024.0, 0.0], [-2048.0, 0.0]])
    student = _randn(0, 3, 4).float().requires_grad_(True)
    loss = PKTLoss()(student, teacher)
    loss.backward()
    assert torch.isfinite(loss) and student.grad is not None
    assert torch.isfinite(student.grad).all()


def _reference_cosine_similarity_loss(output_net: Tensor, target_net: Tensor) -> Tensor:
    """`passalis/probabilistic_kt/nn/pkt.py::cosine_similarity_loss` as notes §2.2 describes it:
    self-pairs kept in the row normalisation, mean over all B² entries."""
    rows = []
    for net in (output_net, target_net):
        unit = net / (torch.sqrt((net**2).sum(dim=1, keepdim=True)) + EPS)
        unit = torch.where(unit != unit, torch.zeros_like(unit), unit)
        similarity = (unit @ unit.T + 1.0) / 2.0
        rows.append(similarity / similarity.sum(dim=1, keepdim=True))
    student, teacher = rows
    return torch.mean(teacher * torch.log((teacher + EPS) / (student + EPS)))


@pytest.mark.parametrize("seed", [0, 1])
def test_pkt_relation_to_reference_with_equal_teacher_row_sums(seed: int) -> None:
    # With self-pairs kept, row i of the reference is the mixture (1 − a_i on i, a_i·p_{·|i}),
    # a_i = S_i / (1 + S_i), S_i = Σ_{k≠i} A_ik; so its row KL is a_i·KL_i + KL(Bern a_i‖Bern b_i)
    # (b_i: the student's a_i). Orthonormal teacher rows give every a_i = (B − 1)/(B + 1), hence
    # B·L_ref = a·L + (1/B) Σ_i KL(Bern a‖Bern b_i), exactly up to the eps terms.
    batch = 6
    teacher = torch.linalg.qr(_randn(seed, 9, 9)).Q[:batch]
    student = _randn(seed + 10, batch, 3)
    unit = student / student.norm(dim=1, keepdim=True)
    sums = ((unit @ unit.T + 1) / 2).sum(dim=1) - 1
    a, b = (batch - 1) / (batch + 1), (sums / (1 + sums)).tolist()
    bernoulli = sum((1 - a) * math.log((1 - a) / (1 - bi)) + a * math.log(a / bi) for bi in b)
    ours = PKTLoss()(student, teacher).item()
    reference = _reference_cosine_similarity_loss(student, teacher).item()
    assert batch * reference == pytest.approx(a * ours + bernoulli / batch, rel=1e-4, abs=1e-7)


def test_l1_hand_worked() -> None:
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    teacher = torch.tensor([[1.0, 0.0, 3.5], [2.0, -1.0, 1.0]])
    assert LogitL1Loss()(student, teacher).item() == pytest.approx((2 + 0.5 + 2 + 3) / 6)
    assert LogitL1Loss()(student, student.clone()).item() == 0.0


def test_symmetric_kl_hand_worked_and_symmetric() -> None:
    # T = 2: student rows soften to (⅓, ⅓, ⅓) and (½, ¼, ¼); teacher rows to (⅗, ⅕, ⅕) and ⅓s.
    student = torch.tensor([[0.0, 0.0, 0.0], [2 * math.log(2.0), 0.0, 0.0]])
    teacher = torch.tensor([[2 * math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0]])
    third = 1 / 3
    kl_t1_s1 = 0.6 * math.log(0.6 / third) + 2 * 0.2 * math.log(0.2 / third)
    kl_s1_t1 = third * math.log(third / 0.6) + 2 * third * math.log(third / 0.2)
    kl_t2_s2 = third * math.log(third / 0.5) + 2 * third * math.log(third / 0.25)
    kl_s2_t2 = 0.5 * math.log(0.5 / third) + 2 * 0.25 * math.log(0.25 / third)
    expected = (kl_t1_s1 + kl_s1_t1 + kl_t2_s2 + kl_s2_t2) / 2 * 2.0**2 / 2
    loss = SymmetricKLLoss(temperature=2.0)
    assert loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    s, t = _randn(0, 5, 4).float(), _randn(1, 5, 4).float()
    assert loss(s, t).item() == pytest.approx(loss(t, s).item(), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("loss", [PKTLoss(), LogitL1Loss(), SymmetricKLLoss(temperature=4.0)])
def test_low_precision_under_autocast_computes_in_float32(
    dtype: torch.dtype, loss: nn.Module
) -> None:
    student, teacher = ((10 * _randn(seed, 16, 8)).to(dtype) for seed in (0, 1))
    with torch.autocast(device_type="cpu", dtype=dtype):
        value = loss(student, teacher)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(student.float(), teacher.float()), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("make", "student", "teacher", "match"),
    [
        (PKTLoss, torch.zeros(1, 3), torch.zeros(1, 3), "at least 2 samples, got 1"),
        (PKTLoss, torch.zeros(4, 3), torch.zeros(5, 3), r"\(4, 3\) and \(5, 3\)"),
        (LogitL1Loss, torch.zeros(4, 3), torch.zeros(4, 5), r"\(4, 3\) and \(4, 5\)"),
        (SymmetricKLLoss, torch.zeros(4, 3), torch.zeros(3, 3), r"\(4, 3\) and \(3, 3\)"),
    ],
)
def test_shape_refusals(
    make: Callable[[], nn.Module], student: Tensor, teacher: Tensor, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        make()(student, teacher)


def test_constructor_refusals() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SymmetricKLLoss(temperature=0.0)
    with pytest.raises(ValueError, match="at least one term"):
        DistillationLoss(logit_loss=None, logit_weight=1.0, pkt_loss=PKTLoss(), pkt_weight=0.0)
    with pytest.raises(ValueError, match="≥ 0"):
        DistillationLoss(logit_loss=LogitL1Loss(), logit_weight=-1.0, pkt_loss=None, pkt_weight=0)


@dataclass(frozen=True)
class _Output:
    embedding: Tensor
    class_scores: tuple[Tensor, ...]


def _outputs(heads: int, seed: int, dim: int) -> _Output:
    """A batch of 6 with `heads` (6, 4) class-score tensors and a (6, dim) embedding, all leaves
    that require grad (to see which side receives gradients)."""
    scores = tuple((5 * _randn(seed + h, 6, 4)).float().requires_grad_() for h in range(heads))
    return _Output(_randn(seed + 20, 6, dim).float().requires_grad_(), scores)


def _distill(logit_weight: float, pkt_weight: float) -> DistillationLoss:
    return DistillationLoss(
        logit_loss=LogitL1Loss(),
        logit_weight=logit_weight,
        pkt_loss=PKTLoss(),
        pkt_weight=pkt_weight,
    )


def test_distillation_loss_weights_head_mean_and_gradients() -> None:
    student, teacher = _outputs(2, 0, 8), _outputs(2, 1, 16)
    loss = _distill(0.5, 300.0)
    values = loss(student, teacher)
    assert list(values) == ["distill_logit", "distill_pkt"]
    heads = zip(student.class_scores, teacher.class_scores, strict=True)
    per_head = [_l1_oracle(s.detach(), t.detach()) for s, t in heads]
    assert values["distill_logit"].item() == pytest.approx(0.5 * sum(per_head) / 2, rel=1e-6)
    pkt = _pkt_oracle(student.embedding.detach(), teacher.embedding.detach())
    assert values["distill_pkt"].item() == pytest.approx(300 * pkt, rel=1e-4)
    assert "distill_logit: weight=0.5, distill_pkt: weight=300" in repr(loss)
    torch.stack(list(values.values())).sum().backward()
    assert all(t.grad is None for t in (teacher.embedding, *teacher.class_scores))
    for tensor in (student.embedding, *student.class_scores):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_distillation_loss_inactive_terms_are_absent() -> None:
    student, teacher = _outputs(1, 0, 8), _outputs(1, 1, 8)
    # PKT alone needs no class scores (teacher and student may have different classes).
    assert list(_distill(0.0, 1.0)(student, _Output(teacher.embedding, ()))) == ["distill_pkt"]
    logit_only = DistillationLoss(
        logit_loss=SymmetricKLLoss(), logit_weight=1.0, pkt_loss=None, pkt_weight=300.0
    )
    assert list(logit_only(student, teacher)) == ["distill_logit"]


def test_distillation_loss_refuses_mismatched_or_missing_heads() -> None:
    with pytest.raises(ValueError, match="student has 1 and the teacher 2"):
        _distill(1.0, 0.0)(_outputs(1, 0, 8), _outputs(2, 1, 8))
    with pytest.raises(ValueError, match="produce class scores"):
        _distill(1.0, 0.0)(_Output(_randn(0, 6, 8).float(), ()), _outputs(1, 1, 8))
