"""P×K sampling that prefers other cameras (the reference's `BalancedIdentitySampler`)."""

from collections.abc import Iterator, Sequence

import numpy as np

from reid_platform.data.samplers.base import (
    GlobalStep,
    RankShardedBatchSampler,
    check_batch_size,
    indices_by_pid,
)


class CameraBalancedPKSampler(RankShardedBatchSampler):
    """Batches of P identities × K images, the K−1 companions of an anchor from other cameras.

    Each epoch walks all identities once in a random order (the tail that does not fill a whole
    global step of `P × world_size` identities is dropped). For each identity: one random anchor
    image, then K−1 images from cameras other than the anchor's (without replacement while they
    last), then other images of its own camera, then — only for identities with fewer than K
    images — repeats of the images already drawn. Rank `r` gets identities `[r·P, (r+1)·P)` of
    each global step, so concurrent batches of different ranks share no identity.

    An epoch has `num_identities // (P × world_size)` steps on every rank; batches are
    deterministic for `(seed, epoch, rank)`.

    Args:
        pids: the training label of each dataset index.
        camids: the camera of each dataset index.
        batch_size: images per batch on this rank, a multiple of `num_instances`.
        num_instances: K, images per identity in a batch.
        rank, world_size: this data-parallel rank and the number of ranks.
        seed: shared by all ranks; the order is drawn from `(seed, epoch)`.
    """

    def __init__(
        self,
        *,
        pids: Sequence[int],
        camids: Sequence[int],
        batch_size: int,
        num_instances: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int,
    ) -> None:
        super().__init__(rank=rank, world_size=world_size, seed=seed)
        if len(pids) != len(camids):
            raise ValueError(f"got {len(pids)} pids but {len(camids)} camids")
        self.num_instances = num_instances
        self.ids_per_batch = check_batch_size(batch_size, num_instances)
        self._groups = indices_by_pid(pids)
        self._camids = np.asarray(camids, dtype=np.int64)
        ids_per_step = self.ids_per_batch * world_size
        self._num_steps = len(self._groups) // ids_per_step
        if self._num_steps == 0:
            raise ValueError(
                f"P×K sampling needs at least {ids_per_step} identities "
                f"({self.ids_per_batch} per batch × {world_size} ranks); "
                f"the training set has {len(self._groups)}"
            )

    def __len__(self) -> int:
        return self._num_steps

    def _global_steps(self, rng: np.random.Generator) -> Iterator[GlobalStep]:
        order = rng.permutation(len(self._groups))
        p = self.ids_per_batch
        for step in range(self._num_steps):
            identities = order[step * p * self.world_size : (step + 1) * p * self.world_size]
            groups = [self._identity_group(self._groups[i], rng) for i in identities]
            yield [np.concatenate(groups[r * p : (r + 1) * p]) for r in range(self.world_size)]

    def _identity_group(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """K indices of one identity: an anchor, then other cameras, same camera, repeats."""
        k = self.num_instances
        anchor_position = int(rng.integers(len(indices)))
        anchor = indices[anchor_position]
        others = np.delete(indices, anchor_position)
        other_camera = self._camids[others] != self._camids[anchor]
        preferred = np.concatenate(
            [rng.permutation(others[other_camera]), rng.permutation(others[~other_camera])]
        )
        companions = preferred[: k - 1]
        if len(companions) < k - 1:  # fewer than K images: repeat what this identity has
            pool = np.concatenate([[anchor], companions])
            extra = rng.choice(pool, size=k - 1 - len(companions), replace=True)
            companions = np.concatenate([companions, extra])
        return np.concatenate([[anchor], companions]).astype(np.int64)
