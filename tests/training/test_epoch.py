"""One training step when the optimizer step is skipped (as the fp16 scaler does on overflow)."""

import warnings

import pytest
import torch
from torch.nn.functional import cross_entropy

from reid_platform.config.solver import SolverConfig
from reid_platform.training.build import build_solver
from reid_platform.training.epoch import TrainingStep


def test_a_skipped_optimizer_step_advances_the_schedule_without_a_warning(
    baseline, batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = baseline()
    cpu = torch.device("cpu")
    solver = build_solver(SolverConfig(), model, iters_per_epoch=4, device=cpu)
    # GradScaler.step skips optimizer.step when the scaled gradients overflowed.
    monkeypatch.setattr(solver.precision, "step", lambda *args, **kwargs: None)
    step = TrainingStep(
        model=model,
        bare=model,
        objective=lambda output, targets: {"ce": cross_entropy(output.logits[0], targets)},
        solver=solver,
        device=cpu,
        channels_last=False,
        base_lr=3.5e-4,
    )
    images, targets = batch()
    before = [p.detach().clone() for p in model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step.run({"images": images, "pids": targets}, 0)
    assert solver.scheduler.last_epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
