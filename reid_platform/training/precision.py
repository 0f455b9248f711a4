"""Mixed precision, gradient clipping and the non-finite loss check of one optimizer step.

Autocast runs on CUDA only (bf16 or fp16); on the CPU a request for it is ignored with one
logged notice per `MixedPrecision`, since CPU autocast is slower than fp32 for these models.
fp16 needs loss scaling (a `GradScaler`); bf16 has fp32's exponent range and does not.
"""

import contextlib
import logging
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Literal

import torch
from torch import Tensor
from torch.optim import Optimizer

from reid_platform.training.errors import NonFiniteLossError

logger = logging.getLogger(__name__)

AmpDtype = Literal["bf16", "fp16"]
_DTYPES: dict[AmpDtype, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """Autocast and loss scaling for one device.

    `enabled` is whether autocast really runs (asked for, and the device is CUDA). The scaler
    is active only for fp16 on CUDA; otherwise it passes losses and steps straight through,
    so the loop uses one code path: `with mp.autocast(): ...`, `mp.backward(loss)`,
    `mp.step(optimizer, parameters=..., max_grad_norm=...)`.
    """

    def __init__(self, *, device: torch.device, amp: bool, dtype: AmpDtype) -> None:
        self.device = device
        self.enabled = amp and device.type == "cuda"
        self.dtype = _DTYPES[dtype]
        if amp and not self.enabled:
            logger.info("mixed precision needs a CUDA device; training on %s in fp32", device)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.enabled and self.dtype == torch.float16
        )

    def autocast(self) -> AbstractContextManager[object]:
        """Context for the forward pass and the loss: autocast when enabled, else nothing."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def backward(self, loss: Tensor) -> None:
        """Backward of the (scaled, for fp16) total loss."""
        self.scaler.scale(loss).backward()

    def step(
        self,
        optimizer: Optimizer,
        *,
        parameters: Iterable[Tensor],
        max_grad_norm: float | None,
    ) -> Tensor | None:
        """Unscale, clip (when `max_grad_norm` is given), step and update the scale.

        Returns the total gradient norm before clipping, or None without clipping. With fp16
        the scaler skips the step when gradients overflowed; the LR schedule still advances,
        as it is a function of the iteration alone.
        """
        norm = None
        if max_grad_norm is not None:
            self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            norm = clip_gradients(parameters, max_norm=max_grad_norm)
        self.scaler.step(optimizer)
        self.scaler.update()
        return norm


def clip_gradients(parameters: Iterable[Tensor], *, max_norm: float) -> Tensor:
    """Scale all gradients together so their global L2 norm is at most `max_norm`; → the norm
    before clipping. (The reference clipped each parameter on its own; one global norm keeps
    the update's direction.) Parameters without gradients (frozen) are skipped."""
    with_grads = [p for p in parameters if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(with_grads, max_norm=max_norm)


def check_finite_losses(losses: Mapping[str, Tensor], *, iteration: int) -> None:
    """Raise `NonFiniteLossError` naming `iteration` and the first non-finite loss term.

    losses: term name → scalar loss. One device synchronisation when all are finite.
    """
    if not losses:
        return
    values = torch.stack([value.detach().float().reshape(()) for value in losses.values()])
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    for (name, value), ok in zip(losses.items(), finite.tolist(), strict=True):
        if not ok:
            raise NonFiniteLossError(
                f"loss term {name!r} is {float(value.detach()):g} at iteration {iteration}; "
                "lower the learning rate or enable gradient clipping"
            )
