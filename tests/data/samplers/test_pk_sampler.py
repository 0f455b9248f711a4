"""Property tests of `PKSampler`: equal rank lengths, P×K batches, disjoint ranks, determinism."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reid_platform.data.samplers import PKSampler

FAST = settings(max_examples=30, deadline=None)


@st.composite
def pk_setups(draw: st.DrawFn) -> dict:
    """Image counts per identity (some below K), K, P, world size and seed that fit together."""
    k = draw(st.integers(1, 4))
    p = draw(st.integers(1, 3))
    world_size = draw(st.integers(1, 3))
    counts = draw(st.lists(st.integers(1, 9), min_size=p * world_size, max_size=20))
    pids = [pid for pid, count in enumerate(counts) for _ in range(count)]
    order = draw(st.permutations(range(len(pids))))  # identities need not be contiguous
    return {
        "pids": [pids[i] for i in order],
        "num_instances": k,
        "batch_size": p * k,
        "world_size": world_size,
        "seed": draw(st.integers(0, 2**32)),
        "epoch": draw(st.integers(0, 5)),
    }


def rank_samplers(setup: dict) -> list[PKSampler]:
    samplers = [
        PKSampler(
            pids=setup["pids"],
            batch_size=setup["batch_size"],
            num_instances=setup["num_instances"],
            rank=rank,
            world_size=setup["world_size"],
            seed=setup["seed"],
        )
        for rank in range(setup["world_size"])
    ]
    for sampler in samplers:
        sampler.set_epoch(setup["epoch"])
    return samplers


@FAST
@given(pk_setups())
def test_every_rank_yields_len_batches(setup: dict) -> None:
    samplers = rank_samplers(setup)
    lengths = {len(list(sampler)) for sampler in samplers}
    assert lengths == {len(samplers[0])}
    assert len(samplers[0]) == max(1, len(setup["pids"]) // (setup["batch_size"] * len(samplers)))


@FAST
@given(pk_setups())
def test_batches_hold_p_identities_k_times_and_ranks_share_none(setup: dict) -> None:
    pids, k = setup["pids"], setup["num_instances"]
    p = setup["batch_size"] // k
    for step in zip(*rank_samplers(setup), strict=True):
        seen_in_step: set[int] = set()
        for batch in step:
            per_identity = Counter(pids[i] for i in batch)
            assert len(per_identity) == p
            assert set(per_identity.values()) == {k}
            assert seen_in_step.isdisjoint(per_identity)
            seen_in_step |= set(per_identity)


@FAST
@given(pk_setups())
def test_identities_with_k_images_or_more_repeat_none_in_a_batch(setup: dict) -> None:
    pids, k = setup["pids"], setup["num_instances"]
    sizes = Counter(pids)
    for batch in rank_samplers(setup)[0]:
        for pid in {pids[i] for i in batch}:
            group = [i for i in batch if pids[i] == pid]
            if sizes[pid] >= k:
                assert len(set(group)) == k


@FAST
@given(pk_setups())
def test_one_pass_uses_each_image_at_most_once_unless_up_sampled(setup: dict) -> None:
    # White-box: a pass is the unit in which the reference consumes each identity K at a time.
    sampler = rank_samplers(setup)[0]
    used = Counter(
        int(i)
        for step in sampler._one_pass(np.random.default_rng(setup["seed"]))
        for batch in step
        for i in batch
    )
    sizes = Counter(setup["pids"])
    for index, times in used.items():
        assert times == 1 or sizes[setup["pids"][index]] < setup["num_instances"]


@FAST
@given(pk_setups())
def test_same_seed_epoch_and_rank_give_the_same_batches(setup: dict) -> None:
    first, second = rank_samplers(setup)[-1], rank_samplers(setup)[-1]
    assert list(first) == list(second)
    assert list(first) == list(first)  # iterating again repeats the epoch


def test_small_identities_are_up_sampled_to_k() -> None:
    pids = [0] * 6 + [1] * 6 + [2] * 1 + [3] * 2
    sampler = PKSampler(pids=pids, batch_size=8, num_instances=4, seed=3)
    small_groups = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        for batch in sampler:
            small_groups += [[i for i in batch if pids[i] == pid] for pid in (2, 3)]
    small_groups = [group for group in small_groups if group]
    assert small_groups, "identities with fewer than K images never sampled"
    for group in small_groups:
        assert len(group) == 4
        assert set(group) <= {12} or set(group) <= {13, 14}


def test_shuffle_changes_with_the_epoch() -> None:
    pids = [i // 8 for i in range(8 * 40)]
    sampler = PKSampler(pids=pids, batch_size=16, num_instances=4, seed=0)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    assert epochs[0] != epochs[1] != epochs[2]
    other_seed = PKSampler(pids=pids, batch_size=16, num_instances=4, seed=1)
    assert list(other_seed) != epochs[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 6, "num_instances": 4}, "multiple of num_instances"),
        ({"batch_size": 16, "num_instances": 4, "world_size": 2}, "at least 8 identities"),
        ({"batch_size": 8, "num_instances": 4, "rank": 2, "world_size": 2}, "rank"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PKSampler(pids=[i // 4 for i in range(20)], seed=0, **kwargs)
