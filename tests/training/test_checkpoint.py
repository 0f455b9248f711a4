"""Training-state checkpoints: weights-only loadable, atomic, and resuming continues exactly."""

import random
import threading

import numpy as np
import pytest
import torch
from torch.nn.functional import cross_entropy

from reid_platform.config.loading import validate_section
from reid_platform.config.solver import SolverConfig
from reid_platform.training.build import build_solver
from reid_platform.training.checkpoint import (
    TrainingProgress,
    load_training_state,
    save_training_state,
)
from reid_platform.training.errors import TrainingError
from reid_platform.training.rng_state import capture_rng_state, restore_rng_state

SOLVER = {
    "max_epochs": 4,
    "optimizer": {"kind": "adamw", "base_lr": 1e-2, "heads_lr_factor": 2.0},
    "schedule": {"kind": "cosine", "cosine": {"delay_epochs": 1, "eta_min": 1e-4}},
    "warmup": {"kind": "linear", "iters": 2, "factor": 0.1},
    "freeze": {"iters": 2, "modules": ["backbone"]},
}


def make_run(baseline, seed: int):
    model = baseline(seed)
    config = validate_section(SolverConfig, SOLVER, "test")
    solver = build_solver(config, model, iters_per_epoch=3, device=torch.device("cpu"))
    return model, solver


def random_draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def steps(model, solver, iterations: range) -> list[tuple]:
    """Train, each batch drawn from all three global streams; → per-step (loss, lr, draws)."""
    trace = []
    for iteration in iterations:
        model.train()
        solver.freeze.update(iteration)
        images = torch.rand(4, 3, 48, 16) * 255  # torch stream
        targets = torch.tensor([random.randrange(4) for _ in range(4)])  # python stream
        targets[np.random.randint(4)] = 0  # numpy stream
        loss = cross_entropy(model(images, targets).logits[0], targets)
        solver.optimizer.zero_grad()
        solver.precision.backward(loss)
        solver.precision.step(solver.optimizer, parameters=model.parameters(), max_grad_norm=1.0)
        solver.scheduler.step()
        trace.append((loss.item(), solver.scheduler.get_last_lr(), random_draws()))
    return trace


def test_resume_continues_identically(baseline, tmp_path) -> None:
    path = tmp_path / "run" / "state.pt"
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    model, solver = make_run(baseline, seed=0)
    steps(model, solver, range(4))
    progress = TrainingProgress(epoch=1, iteration=4, sampler_epoch=1)
    save_training_state(
        path,
        model=model,
        optimizer=solver.optimizer,
        scheduler=solver.scheduler,
        progress=progress,
        scaler=solver.precision.scaler,
        extra={"best_map": 0.25, "run_id": "abc"},
    )
    expected = steps(model, solver, range(4, 9))

    torch.manual_seed(99), random.seed(99), np.random.seed(99)  # a different process state
    resumed_model, resumed = make_run(baseline, seed=1)
    loaded, extra = load_training_state(
        path,
        model=resumed_model,
        optimizer=resumed.optimizer,
        scheduler=resumed.scheduler,
        scaler=resumed.precision.scaler,
    )
    assert loaded == progress and extra == {"best_map": 0.25, "run_id": "abc"}
    assert resumed.scheduler.last_epoch == 4
    assert steps(resumed_model, resumed, range(4, 9)) == expected
    for name, value in model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[name]), name
    assert resumed.scheduler.state_dict() == solver.scheduler.state_dict()
    original_state = solver.optimizer.state_dict()["state"]
    resumed_state = resumed.optimizer.state_dict()["state"]
    assert original_state.keys() == resumed_state.keys()
    for key, slots in original_state.items():
        for slot, value in slots.items():
            assert torch.equal(value, resumed_state[key][slot]), (key, slot)


def test_file_is_weights_only_and_written_atomically(baseline, tmp_path) -> None:
    model, solver = make_run(baseline, seed=0)
    path = tmp_path / "state.pt"
    for epoch in range(2):  # the second save replaces the first
        save_training_state(
            path,
            model=model,
            optimizer=solver.optimizer,
            scheduler=solver.scheduler,
            progress=TrainingProgress(epoch=epoch, iteration=3 * epoch, sampler_epoch=epoch),
        )
    state = torch.load(path, weights_only=True)
    assert state["progress"] == {"epoch": 1, "iteration": 3, "sampler_epoch": 1}
    assert {"model", "optimizer", "scheduler", "rng"} <= set(state)
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary left


def test_failed_write_keeps_the_previous_file(baseline, tmp_path) -> None:
    model, solver = make_run(baseline, seed=0)
    path = tmp_path / "state.pt"
    kwargs = {"model": model, "optimizer": solver.optimizer, "scheduler": solver.scheduler}
    save_training_state(
        path, progress=TrainingProgress(epoch=1, iteration=3, sampler_epoch=1), **kwargs
    )
    with pytest.raises(TypeError, match="pickle"):  # a lock cannot be saved
        save_training_state(
            path,
            progress=TrainingProgress(epoch=2, iteration=6, sampler_epoch=2),
            extra={"bad": threading.Lock()},
            **kwargs,
        )
    assert torch.load(path, weights_only=True)["progress"]["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_rng_round_trip_repeats_every_stream(tmp_path) -> None:
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    np.random.standard_normal()  # and one in numpy's
    torch.save(capture_rng_state(), tmp_path / "rng.pt")
    first = [random_draws() for _ in range(3)], random.gauss(0, 1), np.random.standard_normal()
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = [random_draws() for _ in range(3)], random.gauss(0, 1), np.random.standard_normal()
    assert again == first


def test_unreadable_checkpoints_are_training_errors(baseline, tmp_path) -> None:
    model, solver = make_run(baseline, seed=0)
    kwargs = {"model": model, "optimizer": solver.optimizer, "scheduler": solver.scheduler}
    with pytest.raises(TrainingError, match="does not exist"):
        load_training_state(tmp_path / "missing.pt", **kwargs)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="cannot be read"):
        load_training_state(tmp_path / "junk.pt", **kwargs)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="not a training checkpoint"):
        load_training_state(tmp_path / "other.pt", **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_rng_round_trip(tmp_path) -> None:
    torch.rand(1, device="cuda")  # CUDA in use: its generators are captured
    state = capture_rng_state()
    assert "cuda" in state
    torch.save(state, tmp_path / "rng.pt")
    first = torch.rand(4, device="cuda")
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert torch.equal(torch.rand(4, device="cuda"), first)
