"""P×K identity sampling (the reference's `NaiveIdentitySampler`), sharded over ranks."""

from collections.abc import Iterator, Sequence

import numpy as np

from reid_platform.data.samplers.base import (
    GlobalStep,
    RankShardedBatchSampler,
    check_batch_size,
    indices_by_pid,
)


class PKSampler(RankShardedBatchSampler):
    """Batches of P identities × K images each, for metric losses (triplet, circle).

    One *pass* over the data: each identity's images are shuffled (an identity with fewer than
    K images is first up-sampled to K with replacement) and cut into groups of K, the leftover
    fewer than K dropped. Each global step then draws `P × world_size` distinct identities among
    those with a group left and takes one group of each; rank `r` gets identities
    `[r·P, (r+1)·P)` of the step. The pass ends when fewer than `P × world_size` identities
    have groups left, and the next pass starts. Hence, within one global step the identity sets
    (and so the index sets) of the ranks are disjoint, and within a pass no image is used twice
    unless its identity was up-sampled.

    An epoch is `max(1, len(pids) // (batch_size × world_size))` steps — about one look at every
    image, as the reference's epoch — cut from a stream of passes that restarts every epoch from
    `(seed, epoch)`. Batches are deterministic for `(seed, epoch, rank)`.

    Args:
        pids: the training label of each dataset index.
        batch_size: images per batch on this rank, a multiple of `num_instances`.
        num_instances: K, images per identity in a batch.
        rank, world_size: this data-parallel rank and the number of ranks.
        seed: shared by all ranks; the shuffle is drawn from `(seed, epoch)`.
    """

    def __init__(
        self,
        *,
        pids: Sequence[int],
        batch_size: int,
        num_instances: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int,
    ) -> None:
        super().__init__(rank=rank, world_size=world_size, seed=seed)
        self.num_instances = num_instances
        self.ids_per_batch = check_batch_size(batch_size, num_instances)
        self._groups = indices_by_pid(pids)
        ids_per_step = self.ids_per_batch * world_size
        if len(self._groups) < ids_per_step:
            raise ValueError(
                f"P×K sampling needs at least {ids_per_step} identities "
                f"({self.ids_per_batch} per batch × {world_size} ranks); "
                f"the training set has {len(self._groups)}"
            )
        self._num_steps = max(1, len(pids) // (batch_size * world_size))

    def __len__(self) -> int:
        return self._num_steps

    def _global_steps(self, rng: np.random.Generator) -> Iterator[GlobalStep]:
        while True:  # every pass yields at least one step: each identity has one group or more
            yield from self._one_pass(rng)

    def _one_pass(self, rng: np.random.Generator) -> Iterator[GlobalStep]:
        k = self.num_instances
        chunks: list[np.ndarray] = []  # per identity: (n_groups, K) indices
        for indices in self._groups:
            if len(indices) < k:
                shuffled = rng.choice(indices, size=k, replace=True)
            else:
                shuffled = rng.permutation(indices)
            n_groups = len(shuffled) // k
            chunks.append(shuffled[: n_groups * k].reshape(n_groups, k))
        used = np.zeros(len(chunks), dtype=np.int64)
        available = list(range(len(chunks)))  # identities with a group left, in no fixed order
        ids_per_step = self.ids_per_batch * self.world_size
        while len(available) >= ids_per_step:
            picks = rng.choice(len(available), size=ids_per_step, replace=False)
            identities = [available[p] for p in picks]
            groups = [chunks[i][used[i]] for i in identities]
            used[identities] += 1
            for position in sorted(picks.tolist(), reverse=True):
                if used[available[position]] == len(chunks[available[position]]):
                    available[position] = available[-1]  # swap-remove keeps this O(P)
                    available.pop()
            yield [
                np.concatenate(groups[r * self.ids_per_batch : (r + 1) * self.ids_per_batch])
                for r in range(self.world_size)
            ]
