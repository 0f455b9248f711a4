"""Capture and restore every random stream training draws from, in tensors and plain numbers.

Python's `random`, numpy's global generator, torch's CPU generator and, when CUDA is in use,
every CUDA device's generator. The state holds only tensors, ints, floats, strings, None and
dicts of them, so it loads with `torch.load(weights_only=True)`. Restoring makes the next draws
identical to those that followed the capture.
"""

import random
from typing import Any

import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """The state of all random streams now (see the module docstring for its contents)."""
    version, internal, gauss_next = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    keys = np.asarray(keys)  # typed as str | ndarray; with legacy=True it is the uint32 key array
    state: dict[str, Any] = {
        "python": {
            "version": version,
            # 625 unsigned 32-bit words; int64 holds them exactly.
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    # Only when CUDA is already in use: querying it otherwise would initialise CUDA for nothing.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set all random streams to a state from `capture_rng_state` (CUDA ones when present in
    both the state and this process)."""
    python = state["python"]
    internal = tuple(int(word) for word in python["internal"].tolist())
    random.setstate((int(python["version"]), internal, python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            str(numpy["kind"]),
            numpy["keys"].numpy().astype(np.uint32),
            int(numpy["position"]),
            int(numpy["has_gauss"]),
            float(numpy["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
        else:
            # Resuming on a different device count: seed what exists from what was saved.
            for index in range(min(len(cuda_states), torch.cuda.device_count())):
                torch.cuda.set_rng_state(cuda_states[index].cpu(), index)
