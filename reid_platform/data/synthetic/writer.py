"""Writing the benchmark to disk in Market-1501 layout, rendering in a pool of processes.

The tree is written into a hidden sibling folder and renamed onto `out` at the end, so an
interrupted run never leaves a half-written benchmark behind; `synthetic.json` records the
parameters and counts. Output is byte-identical for the same parameters whatever `workers` is:
each image is rendered from its own seed (`plan.py`) and encoded with a fixed JPEG quality.
"""

import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from reid_platform.data.synthetic.camera import CameraConditions, sample_camera
from reid_platform.data.synthetic.identity import sample_identity
from reid_platform.data.synthetic.plan import (
    DISTRACTOR_PID,
    FOLDERS,
    JUNK_PID,
    ImageJob,
    camera_rng,
    plan_benchmark,
)
from reid_platform.data.synthetic.render import ImageKind, render_image
from reid_platform.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

MANIFEST = "synthetic.json"
GENERATOR_VERSION = 1
_CHUNK = 48


@dataclass(frozen=True, slots=True)
class SyntheticSummary:
    """What one generation wrote; the counts are those a Market-1501 loader will see (junk is
    dropped by the loader, distractors are part of the gallery)."""

    root: Path
    train_ids: int
    test_ids: int
    train_images: int
    query_images: int
    gallery_images: int  # test identities only, without distractors
    distractor_images: int
    junk_images: int
    seconds: float

    @property
    def images(self) -> int:
        return (
            self.train_images
            + self.query_images
            + self.gallery_images
            + self.distractor_images
            + self.junk_images
        )

    def counts(self) -> dict[str, int]:
        """The identity and image counts by field name (what `synthetic.json` records)."""
        return {
            "train_ids": self.train_ids,
            "test_ids": self.test_ids,
            "train_images": self.train_images,
            "query_images": self.query_images,
            "gallery_images": self.gallery_images,
            "distractor_images": self.distractor_images,
            "junk_images": self.junk_images,
        }


@dataclass(frozen=True, slots=True)
class _RenderContext:
    """What every worker needs besides its jobs (small; sent with each chunk)."""

    root: Path
    seed: int
    height: int
    width: int
    cameras: tuple[CameraConditions, ...]


def _write_chunk(context: _RenderContext, jobs: Sequence[ImageJob]) -> int:
    """Render and save `jobs`; returns how many were written."""
    for job in jobs:
        who = sample_identity(job.identity_rng(context.seed))
        camera = context.cameras[job.camid - 1]
        kind: ImageKind = "junk" if job.pid == JUNK_PID else "person"
        pixels = render_image(
            who,
            camera,
            job.rng(context.seed),
            height=context.height,
            width=context.width,
            kind=kind,
        )
        Image.fromarray(pixels).save(
            context.root / job.folder / job.name, format="JPEG", quality=camera.jpeg_quality
        )
    return len(jobs)


def synthetic_parameters(
    *, ids: int, cams: int, images_per_id: int, height: int, width: int, seed: int
) -> dict[str, int]:
    """The parameters that determine the output, as recorded in `synthetic.json`."""
    return {
        "ids": ids,
        "cams": cams,
        "images_per_id": images_per_id,
        "height": height,
        "width": width,
        "seed": seed,
        "version": GENERATOR_VERSION,
    }


def _check(parameters: dict[str, int]) -> None:
    limits = {"ids": (4, 100_000), "cams": (2, 9), "images_per_id": (2, 1000)}
    limits |= {"height": (16, 2048), "width": (8, 2048)}
    for key, (low, high) in limits.items():
        if not low <= parameters[key] <= high:
            why = " (Market-1501 file names hold one camera digit)" if key == "cams" else ""
            raise ConfigError(
                f"synthetic benchmark {key} must be between {low} and {high}{why}, "
                f"got {parameters[key]}"
            )


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _render_all(context: _RenderContext, jobs: list[ImageJob], workers: int) -> None:
    chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
    task = partial(_write_chunk, context)
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            task(chunk)
        return
    # fork where there is one: starts in milliseconds and, unlike spawn, does not re-run an
    # unguarded `__main__`; the children use only numpy and PIL, none of the parent's threads.
    methods = multiprocessing.get_all_start_methods()
    start = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=start) as pool:
        done = 0
        for written in pool.map(task, chunks):
            done += written
            logger.debug("synthetic benchmark: %d / %d images", done, len(jobs))


def _summary(root: Path, jobs: list[ImageJob], ids: int, seconds: float) -> SyntheticSummary:
    def people(folder: str) -> int:
        return sum(1 for job in jobs if job.folder == folder and job.pid > 0)

    return SyntheticSummary(
        root=root,
        train_ids=ids // 2,
        test_ids=ids - ids // 2,
        train_images=people("bounding_box_train"),
        query_images=people("query"),
        gallery_images=people("bounding_box_test"),
        distractor_images=sum(1 for job in jobs if job.pid == DISTRACTOR_PID),
        junk_images=sum(1 for job in jobs if job.pid == JUNK_PID),
        seconds=seconds,
    )


def generate_synthetic_benchmark(
    *,
    out: Path,
    ids: int,
    cams: int,
    images_per_id: int,
    height: int,
    width: int,
    seed: int,
    workers: int | None = None,
) -> SyntheticSummary:
    """Write a synthetic multi-camera person benchmark in Market-1501 layout into `out`.

    `out` must be absent or empty (a `DatasetError` otherwise: nothing is ever overwritten).
    `workers` processes render in parallel (default: the CPUs available); the files do not
    depend on it. Bad parameters raise a `ConfigError` naming the parameter.
    """
    out = Path(out)
    parameters = synthetic_parameters(
        ids=ids, cams=cams, images_per_id=images_per_id, height=height, width=width, seed=seed
    )
    _check(parameters)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"cannot write the synthetic benchmark into {out}: it is not empty")
    started = time.perf_counter()
    jobs = plan_benchmark(ids=ids, cams=cams, images_per_id=images_per_id, seed=seed)
    cameras = tuple(sample_camera(camera_rng(seed, camid)) for camid in range(1, cams + 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for folder in FOLDERS:
            (staging / folder).mkdir(parents=True)
        context = _RenderContext(staging, seed, height, width, cameras)
        _render_all(context, jobs, _default_workers() if workers is None else workers)
        summary = _summary(out, jobs, ids, time.perf_counter() - started)
        manifest = {
            "generator": "reid_platform.synthetic",
            "parameters": parameters,
            "counts": summary.counts(),
        }
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        (staging / MANIFEST).write_text(text, encoding="utf-8")
        try:
            if out.exists():
                out.rmdir()  # empty when checked above; fails if someone filled it since
            staging.rename(out)
        except OSError as error:
            raise DatasetError(
                f"cannot write the synthetic benchmark into {out}: it was filled meanwhile"
            ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "wrote the synthetic benchmark (%d images, %d ids, %d cameras) to %s in %.1f s",
        summary.images,
        ids,
        cams,
        out,
        summary.seconds,
    )
    return summary
