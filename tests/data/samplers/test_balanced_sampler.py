"""Tests of `CameraBalancedPKSampler`: P×K batches, disjoint ranks, other cameras preferred."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from reid_platform.data.samplers import CameraBalancedPKSampler

FAST = settings(max_examples=30, deadline=None)


@st.composite
def balanced_setups(draw: st.DrawFn) -> dict:
    k = draw(st.integers(1, 4))
    p = draw(st.integers(1, 3))
    world_size = draw(st.integers(1, 3))
    cams_per_id = draw(
        st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=8), min_size=p * world_size)
    )
    pids = [pid for pid, cams in enumerate(cams_per_id) for _ in cams]
    camids = [cam for cams in cams_per_id for cam in cams]
    return {
        "pids": pids,
        "camids": camids,
        "num_instances": k,
        "batch_size": p * k,
        "world_size": world_size,
        "seed": draw(st.integers(0, 2**32)),
        "epoch": draw(st.integers(0, 5)),
    }


def rank_samplers(setup: dict) -> list[CameraBalancedPKSampler]:
    samplers = [
        CameraBalancedPKSampler(
            pids=setup["pids"],
            camids=setup["camids"],
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


def groups_of(batch: list[int], k: int) -> list[list[int]]:
    """A batch is P groups of K, each group's anchor first."""
    return [batch[i : i + k] for i in range(0, len(batch), k)]


@FAST
@given(balanced_setups())
def test_ranks_get_equal_epochs_of_p_by_k_batches_with_disjoint_identities(setup: dict) -> None:
    pids, k = setup["pids"], setup["num_instances"]
    samplers = rank_samplers(setup)
    p_times_world = setup["batch_size"] // k * setup["world_size"]
    assert {len(list(sampler)) for sampler in samplers} == {len(set(pids)) // p_times_world}
    seen_in_epoch: set[int] = set()
    for step in zip(*samplers, strict=True):
        for batch in step:
            per_identity = Counter(pids[i] for i in batch)
            assert set(per_identity.values()) == {k}
            assert seen_in_epoch.isdisjoint(per_identity)  # each identity once per epoch
            seen_in_epoch |= set(per_identity)


@FAST
@given(balanced_setups())
def test_companions_come_from_other_cameras_as_far_as_they_exist(setup: dict) -> None:
    pids, camids, k = setup["pids"], setup["camids"], setup["num_instances"]
    for batch in rank_samplers(setup)[0]:
        for anchor, *companions in groups_of(batch, k):
            same_id = [i for i in range(len(pids)) if pids[i] == pids[anchor] and i != anchor]
            other_cams = [i for i in same_id if camids[i] != camids[anchor]]
            from_other_cams = [i for i in companions if camids[i] != camids[anchor]]
            assert len(set(from_other_cams)) == min(k - 1, len(other_cams))
            if len(same_id) >= k - 1:
                assert len(set(companions)) == k - 1 and anchor not in companions


@FAST
@given(balanced_setups())
def test_same_seed_epoch_and_rank_give_the_same_batches(setup: dict) -> None:
    assert list(rank_samplers(setup)[-1]) == list(rank_samplers(setup)[-1])


def test_hand_worked_identity_prefers_its_two_other_camera_images() -> None:
    # Identity 0: five images in camera 0 (indices 0-4), one in camera 1 (5), one in camera 2 (6).
    # With K=3, an anchor from camera 0 must be joined by exactly images 5 and 6.
    pids = [0] * 7 + [1] * 3
    camids = [0, 0, 0, 0, 0, 1, 2, 0, 0, 0]
    sampler = CameraBalancedPKSampler(
        pids=pids, camids=camids, batch_size=3, num_instances=3, seed=0
    )
    anchors_in_cam0 = 0
    for epoch in range(40):
        sampler.set_epoch(epoch)
        for anchor, *companions in groups_of([i for b in sampler for i in b], 3):
            if pids[anchor] == 0 and camids[anchor] == 0:
                anchors_in_cam0 += 1
                assert sorted(companions) == [5, 6]
            elif pids[anchor] == 0:  # anchor 5 or 6: two distinct images of the other cameras
                assert len(set(companions)) == 2 and anchor not in companions
            else:  # identity 1 has a single camera: its other two images
                assert sorted([anchor, *companions]) == [7, 8, 9]
    assert anchors_in_cam0 > 0


def test_single_image_identity_repeats_its_image() -> None:
    pids, camids = [0, 1, 1], [0, 0, 1]
    sampler = CameraBalancedPKSampler(
        pids=pids, camids=camids, batch_size=4, num_instances=4, seed=5
    )
    groups = []
    for epoch in range(10):
        sampler.set_epoch(epoch)
        groups += list(sampler)
    assert [0, 0, 0, 0] in groups
