"""Seeding for reproducible training: once at the start, and again at every epoch.

The start seed makes model initialisation the same on every run (and every rank). The epoch
seed is derived from (seed, rank, epoch) alone, so the random draws of an epoch (augmentations
in the main process, dropout, random patches) do not depend on what ran before it: a run
resumed at epoch e draws exactly what the uninterrupted run drew, whatever evaluation or
checkpointing consumed in between, and ranks augment differently.

Loader worker processes seed themselves from the loader's generator each time they start;
training loaders are not persistent and the loop re-seeds that generator with the epoch seed,
so with `data.loader.num_workers > 0` too a resumed epoch draws what the original one drew.
"""

import logging
import os
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) global generators with `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, *, rank: int, epoch: int) -> int:
    """A well-mixed 32-bit seed for (`seed`, `rank`, `epoch`)."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


def configure_determinism(*, deterministic: bool, device: torch.device) -> None:
    """With `deterministic`, make torch use deterministic kernels (an error names any op that
    has none); without it on CUDA, let cuDNN pick the fastest convolution algorithms."""
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; it must be set before cuBLAS starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        logger.info("deterministic algorithms on")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: tune once, then reuse
