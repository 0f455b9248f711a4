"""Solver config → solver parts."""

import pytest
import torch

from reid_platform.config.loading import validate_section
from reid_platform.config.solver import SolverConfig
from reid_platform.errors import ConfigError
from reid_platform.training.build import build_solver
from reid_platform.training.freeze import ModuleFreeze

CPU = torch.device("cpu")


def test_defaults_build_adam_without_freeze_or_clipping(baseline) -> None:
    solver = build_solver(SolverConfig(), baseline(), iters_per_epoch=5, device=CPU)
    assert type(solver.optimizer) is torch.optim.Adam
    assert solver.freeze is None and solver.max_grad_norm is None
    assert not solver.precision.enabled
    assert solver.scheduler.last_epoch == 0
    # Default multistep [40, 90] without warmup: the base LR at iteration 0.
    assert solver.optimizer.param_groups[0]["lr"] == pytest.approx(3.5e-4)


def test_freeze_and_clipping_come_from_the_config(mgn) -> None:
    raw = {
        "freeze": {"iters": 7, "modules": ["backbone", "b1", "b2", "b3"]},
        "grad_clip": {"enabled": True, "max_norm": 2.5},
        "precision": {"amp": True, "dtype": "fp16"},
    }
    model = mgn()
    solver = build_solver(
        validate_section(SolverConfig, raw, "test"), model, iters_per_epoch=3, device=CPU
    )
    assert isinstance(solver.freeze, ModuleFreeze)
    assert solver.freeze.iters == 7 and solver.freeze.module_names == ("backbone", "b1", "b2", "b3")
    assert not solver.freeze.frozen  # applied by the loop's first update(iteration)
    assert solver.max_grad_norm == 2.5
    assert not solver.precision.enabled  # CPU: fp32


def test_unknown_freeze_module_is_a_config_error(baseline) -> None:
    raw = {"freeze": {"iters": 7, "modules": ["heads"]}}
    with pytest.raises(ConfigError, match="did you mean 'head'"):
        build_solver(
            validate_section(SolverConfig, raw, "test"), baseline(), iters_per_epoch=3, device=CPU
        )


def test_cosine_floor_above_the_base_lr_is_a_config_error(baseline) -> None:
    raw = {
        "optimizer": {"base_lr": 1e-4},
        "schedule": {"kind": "cosine", "cosine": {"eta_min": 1e-3}},
    }
    with pytest.raises(ConfigError, match="eta_min"):
        build_solver(
            validate_section(SolverConfig, raw, "test"), baseline(), iters_per_epoch=3, device=CPU
        )
