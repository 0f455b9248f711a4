"""Property tests of `ShuffleBatchSampler`: equal rank lengths, disjoint shards, epoch shuffle."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from reid_platform.data.samplers import ShuffleBatchSampler

FAST = settings(max_examples=40, deadline=None)


@st.composite
def shuffle_setups(draw: st.DrawFn) -> dict:
    batch_size = draw(st.integers(1, 8))
    world_size = draw(st.integers(1, 4))
    drop_last = draw(st.booleans())
    minimum = batch_size * world_size if drop_last else 1
    return {
        "num_samples": draw(st.integers(minimum, 120)),
        "batch_size": batch_size,
        "world_size": world_size,
        "drop_last": drop_last,
        "seed": draw(st.integers(0, 2**32)),
        "epoch": draw(st.integers(0, 5)),
    }


def rank_batches(setup: dict) -> list[list[list[int]]]:
    """The epoch's batches of every rank."""
    batches = []
    for rank in range(setup["world_size"]):
        sampler = ShuffleBatchSampler(
            num_samples=setup["num_samples"],
            batch_size=setup["batch_size"],
            rank=rank,
            world_size=setup["world_size"],
            seed=setup["seed"],
            drop_last=setup["drop_last"],
        )
        sampler.set_epoch(setup["epoch"])
        batches.append(list(sampler))
        assert len(batches[-1]) == len(sampler)
    return batches


@FAST
@given(shuffle_setups())
def test_ranks_yield_equal_numbers_of_full_batches(setup: dict) -> None:
    batches = rank_batches(setup)
    assert len({len(rank) for rank in batches}) == 1
    assert all(len(batch) == setup["batch_size"] for rank in batches for batch in rank)


@FAST
@given(shuffle_setups())
def test_shards_are_disjoint_and_cover_the_data(setup: dict) -> None:
    used = Counter(i for rank in rank_batches(setup) for batch in rank for i in batch)
    n, global_batch = setup["num_samples"], setup["batch_size"] * setup["world_size"]
    assert set(used) <= set(range(n))
    if setup["drop_last"]:
        assert set(used.values()) == {1}
        assert len(used) == n // global_batch * global_batch
    else:
        assert set(used) == set(range(n))  # every sample seen; padding repeats a few
        assert sum(used.values()) == -(-n // global_batch) * global_batch


@FAST
@given(shuffle_setups())
def test_same_seed_epoch_and_rank_give_the_same_batches(setup: dict) -> None:
    assert rank_batches(setup) == rank_batches(setup)


def test_shuffle_changes_with_the_epoch() -> None:
    sampler = ShuffleBatchSampler(num_samples=100, batch_size=10, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert sorted(i for batch in sampler for i in batch) == list(range(100))
