"""Training batch samplers that shard themselves over data-parallel ranks."""

from reid_platform.data.samplers.balanced import CameraBalancedPKSampler
from reid_platform.data.samplers.base import RankShardedBatchSampler
from reid_platform.data.samplers.build import build_train_batch_sampler, per_rank_batch_size
from reid_platform.data.samplers.identity import PKSampler
from reid_platform.data.samplers.shuffle import ShuffleBatchSampler

__all__ = [
    "CameraBalancedPKSampler",
    "PKSampler",
    "RankShardedBatchSampler",
    "ShuffleBatchSampler",
    "build_train_batch_sampler",
    "per_rank_batch_size",
]
