"""LR curves of every schedule × warmup kind against hand-computed values.

Common setting: base LR 1e-3, 4 iterations per epoch, 6 epochs (24 iterations), warmup 10
iterations from factor 0.1; multistep milestones [3, 5] (absolute epochs → iterations 12 and 20),
gamma 0.1; cosine with delay 2 epochs (iteration 8) to eta_min 1e-5 at epoch 6 (iteration 24).
"""

from typing import Any

import pytest
import torch
from torch import nn

from reid_platform.config.loading import validate_section
from reid_platform.config.solver import SolverConfig
from reid_platform.training.build import build_lr_schedule, build_lr_scheduler
from reid_platform.training.schedule import (
    ConstantSchedule,
    CosineSchedule,
    IterationLRScheduler,
    LRSchedule,
    Warmup,
)

BASE_LR, ITERS_PER_EPOCH = 1e-3, 4


def solver(schedule: dict[str, Any], warmup_kind: str, warmup_iters: int = 10) -> SolverConfig:
    raw = {
        "max_epochs": 6,
        "optimizer": {"kind": "sgd", "base_lr": BASE_LR},
        "schedule": schedule,
        "warmup": {"kind": warmup_kind, "iters": warmup_iters, "factor": 0.1},
    }
    return validate_section(SolverConfig, raw, "test")


MULTISTEP = {"kind": "multistep", "multistep": {"milestones": [3, 5], "gamma": 0.1}}
COSINE = {"kind": "cosine", "cosine": {"delay_epochs": 2, "eta_min": 1e-5}}
CONSTANT = {"kind": "constant"}

# Warmup values at iterations 0, 5, 9 (α = 0, 0.5, 0.9) times the base LR:
#   linear 0.1·(1−α)+α → 0.1, 0.55, 0.91; constant → 0.1; exponential 0.1^(1−α) → 0.1,
#   0.316227766, 0.794328235.
WARMUP_LRS = {
    "linear": {0: 1.0e-4, 5: 5.5e-4, 9: 9.1e-4},
    "constant": {0: 1.0e-4, 5: 1.0e-4, 9: 1.0e-4},
    "exponential": {0: 1.0e-4, 5: 3.1622776601683794e-4, 9: 7.943282347242815e-4},
}

# After warmup (iterations ≥ 10), multistep: 1e-3 until iteration 11 (epoch 2.75), 1e-4 from
# iteration 12 (epoch 3) to 19, 1e-5 from iteration 20 (epoch 5).
MULTISTEP_AFTER_WARMUP = {10: 1e-3, 11: 1e-3, 12: 1e-4, 19: 1e-4, 20: 1e-5, 23: 1e-5}

# Cosine, p = (epoch − 2) / 4: 1e-5 + 0.99e-3·(1 + cos πp)/2.
#   it 12 (p 0.25) 8.55017856687341e-4; it 16 (p 0.5) 5.05e-4; it 20 (p 0.75)
#   1.54982143312659e-4; it 23 (p 0.9375) 1.9511286200400937e-5; it 24 (end) 1e-5.
COSINE_AFTER_WARMUP = {
    10: 1e-5 + 0.99e-3 * 0.5 * (1 + 0.9238795325112867),  # p = 0.125, cos = 0.92388
    12: 8.55017856687341e-4,
    16: 5.05e-4,
    20: 1.54982143312659e-4,
    23: 1.9511286200400937e-5,
    24: 1e-5,
}


def lr_at(config: SolverConfig, iteration: int) -> float:
    schedule = build_lr_schedule(config, iters_per_epoch=ITERS_PER_EPOCH)
    return BASE_LR * schedule.lr_factor(iteration)


@pytest.mark.parametrize("warmup", ["linear", "constant", "exponential"])
def test_multistep_with_warmup(warmup: str) -> None:
    config = solver(MULTISTEP, warmup)
    for iteration, expected in {**WARMUP_LRS[warmup], **MULTISTEP_AFTER_WARMUP}.items():
        assert lr_at(config, iteration) == pytest.approx(expected, rel=1e-9), iteration


def test_multistep_milestones_are_absolute_epochs_even_inside_the_warmup() -> None:
    # Milestone 2 = iteration 8, still in the linear warmup: both factors apply.
    config = solver({"kind": "multistep", "multistep": {"milestones": [2], "gamma": 0.1}}, "linear")
    assert lr_at(config, 7) == pytest.approx(1e-3 * (0.1 * 0.3 + 0.7), rel=1e-9)  # 7.3e-4
    assert lr_at(config, 8) == pytest.approx(8.2e-5, rel=1e-9)  # (0.02 + 0.8) × 0.1 × 1e-3
    assert lr_at(config, 10) == pytest.approx(1e-4, rel=1e-9)


@pytest.mark.parametrize("warmup", ["linear", "constant", "exponential"])
def test_delayed_cosine_with_warmup(warmup: str) -> None:
    config = solver(COSINE, warmup)
    # Inside the warmup the delay plateau (main factor 1) holds until iteration 8 (epoch 2).
    for iteration, expected in WARMUP_LRS[warmup].items():
        if iteration <= 8:
            assert lr_at(config, iteration) == pytest.approx(expected, rel=1e-9), iteration
    # Iteration 9: warmup still applies and the cosine has begun (p = 0.0625).
    warmup_factor = {"linear": 0.91, "constant": 0.1, "exponential": 0.7943282347242815}[warmup]
    expected_9 = warmup_factor * 9.904887137995992e-4
    assert lr_at(config, 9) == pytest.approx(expected_9, rel=1e-9)
    for iteration, expected in COSINE_AFTER_WARMUP.items():
        assert lr_at(config, iteration) == pytest.approx(expected, rel=1e-9), iteration


def test_cosine_without_warmup_is_flat_during_the_delay() -> None:
    config = solver(COSINE, "linear", warmup_iters=0)
    assert [lr_at(config, it) for it in range(9)] == pytest.approx([1e-3] * 9, rel=1e-12)
    assert lr_at(config, 16) == pytest.approx(5.05e-4, rel=1e-9)


def test_plain_cosine_starts_at_iteration_zero() -> None:
    config = solver({"kind": "cosine", "cosine": {"delay_epochs": 0, "eta_min": 0.0}}, "linear", 0)
    # p = epoch / 6; iteration 12 is epoch 3, p = 0.5 → 0.5e-3.
    assert lr_at(config, 0) == pytest.approx(1e-3)
    assert lr_at(config, 12) == pytest.approx(5e-4, rel=1e-9)
    assert lr_at(config, 24) == pytest.approx(0.0, abs=1e-18)


@pytest.mark.parametrize("warmup", ["linear", "constant", "exponential"])
def test_constant_with_warmup(warmup: str) -> None:
    config = solver(CONSTANT, warmup)
    for iteration, expected in {**WARMUP_LRS[warmup], 10: 1e-3, 23: 1e-3, 500: 1e-3}.items():
        assert lr_at(config, iteration) == pytest.approx(expected, rel=1e-9), iteration


def test_eta_min_scales_with_the_group_factor() -> None:
    # A group at 10 × base ends at 10 × eta_min: the curve is scaled, not shifted.
    layer = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(
        [{"params": [layer.weight], "lr": 1e-3}, {"params": [layer.bias], "lr": 1e-2}], lr=1e-3
    )
    schedule = LRSchedule(
        iters_per_epoch=1,
        warmup=Warmup(kind="linear", iters=0, factor=0.1),
        main=CosineSchedule(max_epochs=4, delay_epochs=0, base_lr=1e-3, eta_min=1e-5),
    )
    scheduler = IterationLRScheduler(optimizer, schedule=schedule)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-5, 1e-4], rel=1e-9)


def test_scheduler_follows_the_pure_function_and_round_trips(tmp_path) -> None:
    config = solver(MULTISTEP, "linear")
    layer = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(
        [{"params": [layer.weight], "lr": BASE_LR}, {"params": [layer.bias], "lr": 2 * BASE_LR}],
        lr=BASE_LR,
    )
    scheduler = build_lr_scheduler(config, optimizer, iters_per_epoch=ITERS_PER_EPOCH)
    schedule = build_lr_schedule(config, iters_per_epoch=ITERS_PER_EPOCH)
    for iteration in range(14):
        expected = BASE_LR * schedule.lr_factor(iteration)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
        assert optimizer.param_groups[1]["lr"] == pytest.approx(2 * expected, rel=1e-12)
        optimizer.step()
        scheduler.step()
        if iteration == 6:
            torch.save(
                {"scheduler": scheduler.state_dict(), "optimizer": optimizer.state_dict()},
                tmp_path / "state.pt",
            )
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    fresh_layer = nn.Linear(2, 2)
    fresh_optimizer = torch.optim.SGD(
        [{"params": [fresh_layer.weight], "lr": BASE_LR}, {"params": [fresh_layer.bias]}],
        lr=2 * BASE_LR,
    )
    fresh = build_lr_scheduler(config, fresh_optimizer, iters_per_epoch=ITERS_PER_EPOCH)
    fresh_optimizer.load_state_dict(saved["optimizer"])
    fresh.load_state_dict(saved["scheduler"])
    assert fresh.last_epoch == 7
    for iteration in range(7, 14):
        assert fresh_optimizer.param_groups[0]["lr"] == pytest.approx(
            BASE_LR * schedule.lr_factor(iteration), rel=1e-12
        )
        fresh_optimizer.step()
        fresh.step()
    assert fresh.state_dict() == scheduler.state_dict()
    assert "schedule" not in scheduler.state_dict()


def test_pure_function_refuses_bad_input() -> None:
    warmup = Warmup(kind="linear", iters=0, factor=0.1)
    with pytest.raises(ValueError, match="iters_per_epoch"):
        LRSchedule(iters_per_epoch=0, warmup=warmup, main=ConstantSchedule())
    schedule = LRSchedule(iters_per_epoch=2, warmup=warmup, main=ConstantSchedule())
    with pytest.raises(ValueError, match="non-negative"):
        schedule.lr_factor(-1)
