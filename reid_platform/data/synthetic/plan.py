"""Which images the benchmark holds: identities per split, cameras per identity, file names.

The plan is a pure function of the parameters, so counts can be checked without rendering:

- identities 1..ids; the first `ids // 2` train, the rest test;
- each identity appears in 2 to `min(cams, max(2, images_per_id // 2))` cameras, always including
  camera `(pid - 1) % cams + 1` (so every split sees every camera once it has `cams` identities);
  each of its cameras gets at least two of its `images_per_id` images when there are enough
  (one otherwise), the rest spread at random over its cameras;
- a test identity gives one query per camera it appears in (its first image there), skipping a
  camera only when the gallery would otherwise keep no cross-camera match for some query (this
  happens only for `images_per_id < 4`); the rest of its images form the gallery;
- `max(cams, test images // 8)` pid 0 distractors (one-off people) join the gallery, spread
  round-robin over the cameras, and `cams` pid -1 junk crops (one per camera) go into
  `bounding_box_test`, as in Market-1501;
- file names are `PPPP_cCsS_FFFFFF_BB.jpg` (`-1_c...` for junk) with a frame number unique per
  camera, so every name is unique.

Every image gets its own seed derived from the benchmark seed and what the image is, which is
what keeps the output identical whatever the number of worker processes.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np

Folder = Literal["bounding_box_train", "query", "bounding_box_test"]
FOLDERS: tuple[Folder, ...] = ("bounding_box_train", "query", "bounding_box_test")
DISTRACTOR_PID = 0
JUNK_PID = -1

# Stream tags keep the seeds of different kinds of random draws apart.
_PLAN, _IDENTITY, _CAMERA, _DISTRACTOR, _IMAGE = 1, 2, 3, 4, 5


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A generator seeded by the benchmark seed and non-negative integer keys."""
    return np.random.default_rng([seed % 2**64, *keys])


def identity_rng(seed: int, pid: int, index: int) -> np.random.Generator:
    """The generator a person's appearance is drawn from: one per identity for pids >= 1, one
    per image for distractors (pid 0) and junk (pid -1), who are all different people."""
    if pid > 0:
        return rng_for(seed, _IDENTITY, pid)
    return rng_for(seed, _DISTRACTOR, pid + 1, index)


def camera_rng(seed: int, camid: int) -> np.random.Generator:
    """The generator camera `camid` (1-based) draws its conditions from."""
    return rng_for(seed, _CAMERA, camid)


@dataclass(frozen=True, slots=True)
class ImageJob:
    """One image to render: where it goes, who and which camera, and its own seed key.

    `key` is `pid + 1` and an index unique within that pid, so `(seed, key)` never repeats.
    """

    folder: Folder
    name: str
    pid: int
    camid: int
    key: tuple[int, int]

    def rng(self, seed: int) -> np.random.Generator:
        """The generator of everything random in this one image."""
        return rng_for(seed, _IMAGE, *self.key)

    def identity_rng(self, seed: int) -> np.random.Generator:
        """The generator of the appearance of the person in this image."""
        return identity_rng(seed, self.pid, self.key[1])


def _identity_cameras(seed: int, pid: int, cams: int, images_per_id: int) -> list[int]:
    """The camera (1-based) of each of the identity's images, grouped by camera, ascending."""
    rng = rng_for(seed, _PLAN, pid)
    anchor = (pid - 1) % cams
    most = min(cams, max(2, images_per_id // 2))
    count = int(rng.integers(2, most + 1))
    others = [c for c in range(cams) if c != anchor]
    chosen = sorted([anchor, *(int(c) for c in rng.choice(others, size=count - 1, replace=False))])
    base = 2 if images_per_id >= 2 * count else 1
    extra = rng.multinomial(images_per_id - base * count, np.full(count, 1.0 / count))
    return [cam + 1 for cam, n in zip(chosen, extra, strict=True) for _ in range(base + int(n))]


def _pick_queries(cameras: list[int]) -> set[int]:
    """Indices of query images: the first image per camera, kept while every query still has a
    gallery image of the same identity in another camera."""
    queries: set[int] = set()
    for cam in sorted(set(cameras)):
        trial = queries | {cameras.index(cam)}
        gallery_cams = [c for i, c in enumerate(cameras) if i not in trial]
        if all(any(c != cameras[q] for c in gallery_cams) for q in trial):
            queries = trial
    return queries


def _name(pid: int, camid: int, frame: int) -> str:
    person = str(pid) if pid < 0 else f"{pid:04d}"
    return f"{person}_c{camid}s{frame % 6 + 1}_{frame:06d}_01.jpg"


def distractor_count(*, ids: int, cams: int, images_per_id: int) -> int:
    """How many pid 0 distractor images the gallery gets."""
    return max(cams, (ids - ids // 2) * images_per_id // 8)


def plan_benchmark(*, ids: int, cams: int, images_per_id: int, seed: int) -> list[ImageJob]:
    """Every image of the benchmark in a fixed order (train ids, test ids, distractors, junk)."""
    frames: defaultdict[int, int] = defaultdict(int)
    jobs: list[ImageJob] = []

    def add(folder: Folder, pid: int, camid: int, index: int) -> None:
        frames[camid] += 1
        name = _name(pid, camid, frames[camid])
        jobs.append(ImageJob(folder, name, pid, camid, (pid + 1, index)))

    for pid in range(1, ids + 1):
        cameras = _identity_cameras(seed, pid, cams, images_per_id)
        queries = _pick_queries(cameras) if pid > ids // 2 else set()
        for index, camid in enumerate(cameras):
            if pid <= ids // 2:
                add("bounding_box_train", pid, camid, index)
            else:
                add("query" if index in queries else "bounding_box_test", pid, camid, index)
    for index in range(distractor_count(ids=ids, cams=cams, images_per_id=images_per_id)):
        add("bounding_box_test", DISTRACTOR_PID, index % cams + 1, index)
    for index in range(cams):
        add("bounding_box_test", JUNK_PID, index + 1, index)
    return jobs
