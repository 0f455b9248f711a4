"""What every training batch sampler shares: rank sharding, epoch seeding and equal lengths.

Our samplers shard the data themselves (Ray's `prepare_data_loader` is called with
`add_dist_sampler=False`, since it would otherwise replace a custom batch sampler). Each sampler
describes one *global step* at a time, one batch per rank, from a random stream seeded by
`(seed, epoch)` and therefore identical on every rank; rank `r` keeps batch `r` of each step.
Every rank thus yields the same number of batches per epoch, which DDP needs: a rank that runs
out of batches early leaves the others waiting in an all-reduce forever.
"""

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

GlobalStep = Sequence[np.ndarray]
"""One batch of dataset indices per rank, `world_size` 1-D integer arrays."""


class RankShardedBatchSampler(Sampler[list[int]], ABC):
    """A batch sampler whose epochs are drawn from a stream shared by all data-parallel ranks.

    Subclasses define `_global_steps(rng)` (the stream) and `__len__` (steps per epoch, equal on
    every rank and for every epoch). Call `set_epoch(epoch)` before iterating each epoch.
    """

    def __init__(self, *, rank: int, world_size: int, seed: int) -> None:
        if world_size < 1:
            raise ValueError(f"world_size must be at least 1, got {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next `iter()` yields (the shuffle changes with it)."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = epoch

    @abstractmethod
    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""

    @abstractmethod
    def _global_steps(self, rng: np.random.Generator) -> Iterator[GlobalStep]:
        """The epoch's stream of global steps; it must not end before `len(self)` steps."""

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for step in itertools.islice(self._global_steps(rng), len(self)):
            yield step[self.rank].tolist()


def check_batch_size(batch_size: int, num_instances: int) -> int:
    """The number of identities P in a per-rank batch of `batch_size` = P × `num_instances`."""
    if num_instances < 1:
        raise ValueError(f"num_instances must be at least 1, got {num_instances}")
    if batch_size < num_instances or batch_size % num_instances:
        raise ValueError(
            f"the per-rank batch size ({batch_size}) must be a positive multiple of "
            f"num_instances ({num_instances})"
        )
    return batch_size // num_instances


def indices_by_pid(pids: Sequence[int]) -> list[np.ndarray]:
    """Dataset indices of each identity, identities in ascending pid order: a list of (n_i,)."""
    order = np.argsort(np.asarray(pids, dtype=np.int64), kind="stable")
    sorted_pids = np.asarray(pids, dtype=np.int64)[order]
    boundaries = np.flatnonzero(np.diff(sorted_pids)) + 1
    return np.split(order, boundaries) if len(order) else []
