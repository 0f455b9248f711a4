"""`build_train_batch_sampler`: config kind → sampler, global batch split over ranks."""

import pytest

from reid_platform.config.data import SamplerConfig
from reid_platform.data.samplers import (
    CameraBalancedPKSampler,
    PKSampler,
    ShuffleBatchSampler,
    build_train_batch_sampler,
)
from reid_platform.errors import ConfigError

PIDS = [i // 6 for i in range(6 * 32)]
CAMIDS = [i % 3 for i in range(6 * 32)]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("identity", PKSampler),
        ("balanced_identity", CameraBalancedPKSampler),
        ("shuffle", ShuffleBatchSampler),
    ],
)
def test_each_kind_builds_its_sampler_with_the_per_rank_batch(kind: str, expected: type) -> None:
    config = SamplerConfig.model_validate({"kind": kind, "num_instances": 4})
    samplers = [
        build_train_batch_sampler(
            config,
            pids=PIDS,
            camids=CAMIDS,
            global_batch_size=32,
            rank=rank,
            world_size=2,
            seed=0,
        )
        for rank in range(2)
    ]
    assert all(isinstance(sampler, expected) for sampler in samplers)
    assert len(samplers[0]) == len(samplers[1]) > 0
    assert {len(batch) for sampler in samplers for batch in sampler} == {16}


def test_global_batch_must_split_evenly_over_ranks() -> None:
    with pytest.raises(
        ConfigError, match=r"data\.loader\.batch_size.*global batch size \(30\).*\(4\)"
    ):
        build_train_batch_sampler(
            SamplerConfig(),
            pids=PIDS,
            camids=CAMIDS,
            global_batch_size=30,
            rank=0,
            world_size=4,
            seed=0,
        )


def test_too_few_identities_names_the_config_keys() -> None:
    with pytest.raises(ConfigError, match=r"data\.loader\.batch_size.*identities"):
        build_train_batch_sampler(
            SamplerConfig(kind="identity", num_instances=4),
            pids=PIDS,
            camids=CAMIDS,
            global_batch_size=4 * (len(set(PIDS)) + 1),
            rank=0,
            world_size=1,
            seed=0,
        )
