"""Plain shuffled batches (the reference's `TrainingSampler`), sharded over ranks."""

from collections.abc import Iterator

import numpy as np

from reid_platform.data.samplers.base import GlobalStep, RankShardedBatchSampler


class ShuffleBatchSampler(RankShardedBatchSampler):
    """Batches of a fresh permutation of all indices each epoch, disjoint across ranks.

    Global step `s` takes `batch_size × world_size` consecutive indices of the epoch's
    permutation, rank `r` the `r`-th block of `batch_size`. With `drop_last` the incomplete tail
    is dropped (`num_samples // (batch_size × world_size)` steps); without it the tail is padded
    by wrapping round to the start of the permutation, so every batch is full and every rank has
    the same number of batches (`ceil(num_samples / (batch_size × world_size))`).

    Args:
        num_samples: the dataset length.
        batch_size: images per batch on this rank.
        rank, world_size: this data-parallel rank and the number of ranks.
        seed: shared by all ranks; the permutation is drawn from `(seed, epoch)`.
        drop_last: drop the incomplete last global step instead of padding it.
    """

    def __init__(
        self,
        *,
        num_samples: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int,
        drop_last: bool = True,
    ) -> None:
        super().__init__(rank=rank, world_size=world_size, seed=seed)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        step_size = batch_size * world_size
        if drop_last:
            self._num_steps = num_samples // step_size
            if self._num_steps == 0:
                raise ValueError(
                    f"{num_samples} samples do not fill one global batch of {step_size} "
                    f"({batch_size} per rank × {world_size} ranks) with drop_last"
                )
        else:
            self._num_steps = -(-num_samples // step_size)

    def __len__(self) -> int:
        return self._num_steps

    def _global_steps(self, rng: np.random.Generator) -> Iterator[GlobalStep]:
        permutation = rng.permutation(self.num_samples)
        total = self._num_steps * self.batch_size * self.world_size
        if total > self.num_samples:
            permutation = np.resize(permutation, total)  # wraps round to the start
        grid = permutation[:total].reshape(self._num_steps, self.world_size, self.batch_size)
        for step in grid:  # (world_size, batch_size)
            yield list(step)
