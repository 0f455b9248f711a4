"""Sampler config → the training batch sampler of one data-parallel rank."""

from collections.abc import Sequence

from reid_platform.config.data import SamplerConfig
from reid_platform.data.samplers.balanced import CameraBalancedPKSampler
from reid_platform.data.samplers.base import RankShardedBatchSampler
from reid_platform.data.samplers.identity import PKSampler
from reid_platform.data.samplers.shuffle import ShuffleBatchSampler
from reid_platform.errors import ConfigError


def per_rank_batch_size(global_batch_size: int, world_size: int) -> int:
    """The batch size of one rank when `global_batch_size` is split over `world_size` ranks."""
    if world_size < 1 or global_batch_size % world_size:
        raise ValueError(
            f"the global batch size ({global_batch_size}) must be a multiple of the number of "
            f"data-parallel workers ({world_size})"
        )
    return global_batch_size // world_size


def build_train_batch_sampler(
    config: SamplerConfig,
    *,
    pids: Sequence[int],
    camids: Sequence[int],
    global_batch_size: int,
    rank: int,
    world_size: int,
    seed: int,
) -> RankShardedBatchSampler:
    """The batch sampler of `rank` for the training records with these `pids` and `camids`.

    `global_batch_size` (the config's `loader.batch_size`) is split evenly over the ranks.
    """
    try:
        batch_size = per_rank_batch_size(global_batch_size, world_size)
        match config.kind:
            case "identity":
                return PKSampler(
                    pids=pids,
                    batch_size=batch_size,
                    num_instances=config.num_instances,
                    rank=rank,
                    world_size=world_size,
                    seed=seed,
                )
            case "balanced_identity":
                return CameraBalancedPKSampler(
                    pids=pids,
                    camids=camids,
                    batch_size=batch_size,
                    num_instances=config.num_instances,
                    rank=rank,
                    world_size=world_size,
                    seed=seed,
                )
            case "shuffle":
                return ShuffleBatchSampler(
                    num_samples=len(pids),
                    batch_size=batch_size,
                    rank=rank,
                    world_size=world_size,
                    seed=seed,
                )
    except ValueError as error:
        # The samplers state the arithmetic; the config keys that fix it are named here.
        raise ConfigError(
            f"data.loader.batch_size / data.sampler do not fit the training set: {error}"
        ) from None
