"""Freeze named modules for the first iterations of training (the reference's `FREEZE_ITERS`).

While frozen, a module's parameters have `requires_grad=False` (no gradient is computed, so
no optimizer, with or without weight decay, moves them) and its batch-norm layers run in eval
mode, so their running statistics stay put too. Modules are named EXACTLY as in
`model.named_modules()`: `backbone` freezes `backbone` and everything inside it, never a sibling
such as MGN's `b1_head` (the reference regex-`match`ed parameter names, so its `b1` also froze
`b1_head` … and MGN's first 1000 iterations trained nothing).

Batch-norm eval mode survives `model.train()`: a forward pre-hook on each frozen BN switches it
back to eval before it runs, so the loop never has to remember to re-apply it.
Parameters already frozen before (BNNeck's bias) are left frozen on release.
DDP note: `DistributedDataParallel` only reduces parameters that required grad when it was
built; build it after `release`, or build it while nothing is frozen and pass
`find_unused_parameters=True`.
"""

import logging
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.hooks import RemovableHandle

from reid_platform.config.registry import close_matches
from reid_platform.errors import ConfigError

logger = logging.getLogger(__name__)


def resolve_modules(model: nn.Module, names: Sequence[str]) -> list[nn.Module]:
    """The modules called exactly `names` in `model.named_modules()`; a `ConfigError` listing
    close matches (or the top-level modules) for an unknown name."""
    modules = dict(model.named_modules())
    resolved = []
    for name in names:
        if name not in modules or name == "":
            matches = close_matches(name, [n for n in modules if n])
            hint = matches or [n for n, _ in model.named_children()]
            raise ConfigError(
                f"solver.freeze.modules names {name!r}, which is not a module of the model "
                f"(did you mean {' or '.join(repr(m) for m in hint)}?)"
            )
        resolved.append(modules[name])
    return resolved


def _keep_in_eval(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    # A later `model.train()` set it back to training; undo that before the forward uses it.
    module.training = False


class ModuleFreeze:
    """Freezes `module_names` of `model` until global iteration `iters`.

    Call `update(iteration)` at the start of every iteration (also right after resuming): it
    freezes while `iteration < iters` and releases once `iteration >= iters`; both are idempotent.
    `iters=0` never freezes.
    """

    def __init__(self, *, model: nn.Module, module_names: Sequence[str], iters: int) -> None:
        if iters < 0:
            raise ValueError(f"iters must be non-negative, not {iters}")
        self.model = model
        self.module_names = tuple(module_names)
        self.iters = iters
        self._modules = resolve_modules(model, self.module_names)
        self._frozen_parameters: list[nn.Parameter] = []
        self._hooks: list[RemovableHandle] = []

    @property
    def frozen(self) -> bool:
        """Whether the modules are frozen now."""
        return bool(self._hooks) or bool(self._frozen_parameters)

    def update(self, iteration: int) -> None:
        """Freeze or release for global iteration `iteration` (0-based, before its step)."""
        if iteration < self.iters:
            self.freeze()
        else:
            self.release()

    def freeze(self) -> None:
        """requires_grad off (for parameters that had it) and BN layers in eval mode."""
        if self.frozen:
            return
        seen: set[int] = set()
        for module in self._modules:
            for parameter in module.parameters():
                if parameter.requires_grad and id(parameter) not in seen:
                    seen.add(id(parameter))
                    parameter.requires_grad_(False)
                    parameter.grad = None  # a stale gradient would still move it (momentum)
                    self._frozen_parameters.append(parameter)
            for layer in module.modules():
                if isinstance(layer, _BatchNorm):
                    layer.eval()
                    self._hooks.append(layer.register_forward_pre_hook(_keep_in_eval))
        logger.info("froze %s until iteration %d", ", ".join(self.module_names), self.iters)

    def release(self) -> None:
        """Undo `freeze`: requires_grad back on, BN layers back to the model's mode."""
        if not self.frozen:
            return
        for parameter in self._frozen_parameters:
            parameter.requires_grad_(True)
        self._frozen_parameters.clear()
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        for module in self._modules:
            for layer in module.modules():
                if isinstance(layer, _BatchNorm):
                    layer.train(self.model.training)
        logger.info("released %s", ", ".join(self.module_names))
