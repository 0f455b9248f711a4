"""Mixed precision on CPU (a notice, fp32), gradient clipping and the non-finite loss check."""

import contextlib
import logging

import pytest
import torch
from torch import nn

from reid_platform.errors import ReidError
from reid_platform.training.errors import NonFiniteLossError
from reid_platform.training.precision import MixedPrecision, check_finite_losses, clip_gradients


def test_amp_on_cpu_is_fp32_with_one_notice(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="reid_platform.training.precision"):
        precision = MixedPrecision(device=torch.device("cpu"), amp=True, dtype="fp16")
        for _ in range(3):
            with precision.autocast():
                out = nn.Linear(2, 2)(torch.ones(1, 2))
    assert out.dtype == torch.float32
    assert not precision.enabled and not precision.scaler.is_enabled()
    assert isinstance(precision.autocast(), contextlib.nullcontext)
    notices = [r for r in caplog.records if "CUDA" in r.getMessage()]
    assert len(notices) == 1


def test_no_notice_without_amp(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="reid_platform.training.precision"):
        MixedPrecision(device=torch.device("cpu"), amp=False, dtype="bf16")
    assert caplog.records == []


def test_step_clips_the_global_gradient_norm() -> None:
    layer = nn.Linear(3, 1, bias=False)
    frozen = nn.Parameter(torch.zeros(2), requires_grad=False)  # no grad: skipped, not an error
    optimizer = torch.optim.SGD([layer.weight, frozen], lr=1.0)
    precision = MixedPrecision(device=torch.device("cpu"), amp=False, dtype="bf16")
    with torch.no_grad():
        layer.weight.zero_()
    precision.backward((layer(torch.tensor([[3.0, 4.0, 0.0]]))).sum())  # gradient (3, 4, 0)
    norm = precision.step(optimizer, parameters=[layer.weight, frozen], max_grad_norm=1.0)
    assert norm is not None and float(norm) == pytest.approx(5.0)
    assert layer.weight.detach().flatten().tolist() == pytest.approx([-0.6, -0.8, 0.0], rel=1e-5)


def test_step_without_clipping_returns_no_norm() -> None:
    layer = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    precision = MixedPrecision(device=torch.device("cpu"), amp=False, dtype="bf16")
    precision.backward(layer(torch.ones(1, 2)).sum())
    assert precision.step(optimizer, parameters=layer.parameters(), max_grad_norm=None) is None


def test_clip_gradients_leaves_small_gradients() -> None:
    weight = nn.Parameter(torch.zeros(2))
    weight.grad = torch.tensor([0.3, 0.4])
    assert float(clip_gradients([weight], max_norm=1.0)) == pytest.approx(0.5)
    assert weight.grad.tolist() == pytest.approx([0.3, 0.4])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_loss_names_the_iteration_and_the_term(bad: float) -> None:
    losses = {"loss_cls": torch.tensor(1.2), "loss_triplet": torch.tensor(bad)}
    with pytest.raises(NonFiniteLossError) as caught:
        check_finite_losses(losses, iteration=1234)
    message = str(caught.value)
    assert "'loss_triplet'" in message and "iteration 1234" in message
    assert "loss_cls" not in message
    assert isinstance(caught.value, ReidError)


def test_finite_losses_pass() -> None:
    check_finite_losses({"loss_cls": torch.tensor(0.5, requires_grad=True)}, iteration=0)
    check_finite_losses({}, iteration=0)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _constant_layer(device: torch.device) -> nn.Linear:
    """Linear(8, 4) with every weight 0.5 and no bias: an input of ones gives outputs of 4."""
    layer = nn.Linear(8, 4, bias=False).to(device)
    with torch.no_grad():
        layer.weight.fill_(0.5)
    return layer


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize(
    ("dtype", "torch_dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_amp_on_cuda_autocasts_and_scales_only_fp16(dtype, torch_dtype) -> None:
    device = torch.device("cuda")
    layer = _constant_layer(device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    precision = MixedPrecision(device=device, amp=True, dtype=dtype)
    assert precision.enabled
    assert precision.scaler.is_enabled() == (dtype == "fp16")
    with precision.autocast():
        out = layer(torch.ones(2, 8, device=device))
    assert out.dtype == torch_dtype
    # d loss / d out = 1e-3, × the scaler's start scale 2^16 = 65.5: representable in fp16.
    precision.backward(1e-3 * out.float().sum())
    norm = precision.step(optimizer, parameters=layer.parameters(), max_grad_norm=100.0)
    # Every weight's true gradient is 1e-3 × 2 rows × input 1: the norm of 32 of them.
    assert norm is not None and float(norm) == pytest.approx(2e-3 * 32**0.5, rel=1e-2)
    assert torch.allclose(layer.weight, torch.full_like(layer.weight, 0.5 - 0.1 * 2e-3))


@pytest.mark.gpu
@needs_cuda
def test_an_fp16_step_whose_scaled_gradients_overflow_is_skipped_and_the_scale_halved() -> None:
    device = torch.device("cuda")
    layer = _constant_layer(device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    precision = MixedPrecision(device=device, amp=True, dtype="fp16")
    start_scale = precision.scaler.get_scale()
    with precision.autocast():
        out = layer(torch.ones(2, 8, device=device))
    # d loss / d out = 2 × 4 = 8, × 2^16 = 524,288: beyond fp16's largest value (65,504).
    precision.backward(out.float().pow(2).sum())
    norm = precision.step(optimizer, parameters=layer.parameters(), max_grad_norm=1.0)
    assert norm is not None and not torch.isfinite(norm)
    assert torch.equal(layer.weight, torch.full_like(layer.weight, 0.5))
    assert precision.scaler.get_scale() == start_scale / 2
