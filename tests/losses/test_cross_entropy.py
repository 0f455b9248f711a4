"""Cross-entropy with the reference's label smoothing against a loop, by hand, and vs torch."""

import math

import pytest
import torch
from torch.nn.functional import cross_entropy

from reid_platform.losses import CrossEntropyLoss


def _oracle(logits: torch.Tensor, targets: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Loop over samples and classes: −Σ_c q_c log p_c with q = 1 − ε / ε/(C−1), then mean."""
    num_classes = logits.shape[1]
    per_sample = []
    for row, target in zip(logits, targets.tolist(), strict=True):
        log_norm = torch.log(torch.stack([torch.exp(value) for value in row]).sum())
        terms = []
        for c in range(num_classes):
            q = 1 - epsilon if c == target else epsilon / (num_classes - 1)
            terms.append(-q * (row[c] - log_norm))
        per_sample.append(torch.stack(terms).sum())
    return torch.stack(per_sample).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_matches_loop(seed: int, epsilon: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(12, 5, generator=generator, dtype=torch.float64) * 3
    targets = torch.randint(0, 5, (12,), generator=generator)
    ours_input = logits.clone().float().requires_grad_(True)
    oracle_input = logits.clone().requires_grad_(True)
    loss = CrossEntropyLoss(epsilon=epsilon)(ours_input, targets)
    expected = _oracle(oracle_input, targets, epsilon)
    torch.testing.assert_close(loss.double(), expected, atol=1e-5, rtol=1e-5)
    loss.backward()
    expected.backward()
    assert ours_input.grad is not None and oracle_input.grad is not None
    torch.testing.assert_close(ours_input.grad.double(), oracle_input.grad, atol=1e-6, rtol=1e-5)


def test_hand_worked_values() -> None:
    # p = (0.75, 0.25): −(0.9 log 0.75 + 0.1 log 0.25); equal logits give log 2 for any ε.
    loss = CrossEntropyLoss(epsilon=0.1)
    value = loss(torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0]))
    assert value.item() == pytest.approx(-(0.9 * math.log(0.75) + 0.1 * math.log(0.25)))
    equal = loss(torch.zeros(3, 2), torch.tensor([0, 1, 1]))
    assert equal.item() == pytest.approx(math.log(2.0))


def test_epsilon_zero_is_torch_cross_entropy() -> None:
    logits, targets = torch.randn(6, 7), torch.randint(0, 7, (6,))
    torch.testing.assert_close(CrossEntropyLoss()(logits, targets), cross_entropy(logits, targets))


def test_differs_from_torch_label_smoothing_by_c_over_c_minus_one() -> None:
    # torch spreads ε/C over all classes; ours ε/(C−1) over the others: torch's ε' = ε·C/(C−1).
    logits, targets = torch.randn(6, 4), torch.randint(0, 4, (6,))
    ours = CrossEntropyLoss(epsilon=0.3)(logits, targets)
    torch.testing.assert_close(ours, cross_entropy(logits, targets, label_smoothing=0.4))
    assert not torch.isclose(ours, cross_entropy(logits, targets, label_smoothing=0.3))


def test_reduction_is_the_plain_mean() -> None:
    # The first sample's loss is exactly 0 in float32; the reference would divide by 1, not 2.
    logits = torch.tensor([[100.0, -100.0], [0.0, 0.0]])
    value = CrossEntropyLoss()(logits, torch.tensor([0, 0]))
    assert value.item() == pytest.approx(math.log(2.0) / 2)


def test_extreme_logits_stay_finite() -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    value = CrossEntropyLoss(epsilon=0.1)(logits, torch.tensor([1, 2]))
    assert torch.isfinite(value)
    value.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        CrossEntropyLoss(epsilon=1.0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        CrossEntropyLoss(epsilon=0.1)(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"logits \(N, C\)"):
        CrossEntropyLoss()(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
