"""Combining training datasets and carving the validation split out of training identities.

Training identities of several datasets never collide: each record's (dataset, pid) and
(dataset, camid) pairs are relabelled to 0..N-1 in sorted order (the reference prefixes ids with
the dataset name). The validation split holds out whole identities, so the search objective never
sees an identity the model trained on, and never touches the test split.
"""

import dataclasses
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_platform.data.records import DatasetSplits, ImageRecord, Split, make_split
from reid_platform.errors import DatasetError

logger = logging.getLogger(__name__)


def combine_training_records(datasets: Sequence[DatasetSplits]) -> Split:
    """All training records, with (dataset, pid) and (dataset, camid) relabelled to 0..N-1."""
    records = [record for dataset in datasets for record in dataset.train.records]
    pid_keys = sorted({(record.dataset, record.pid) for record in records})
    cam_keys = sorted({(record.dataset, record.camid) for record in records})
    pid_of = {key: label for label, key in enumerate(pid_keys)}
    cam_of = {key: label for label, key in enumerate(cam_keys)}
    relabelled = [
        dataclasses.replace(
            record,
            pid=pid_of[(record.dataset, record.pid)],
            camid=cam_of[(record.dataset, record.camid)],
        )
        for record in records
    ]
    return make_split("train", relabelled)


def relabel_contiguous(records: Sequence[ImageRecord]) -> Split:
    """A training split whose pids are 0..N-1 in sorted order of the given pids."""
    label_of = {pid: label for label, pid in enumerate(sorted({r.pid for r in records}))}
    return make_split("train", [dataclasses.replace(r, pid=label_of[r.pid]) for r in records])


@dataclass(frozen=True, slots=True)
class TrainValSplits:
    """Training records left after hold-out, and the validation query / gallery."""

    train: Split
    val_query: Split
    val_gallery: Split
    notes: tuple[str, ...]


def _held_out_count(num_ids: int | None, fraction: float | None, available: int) -> int:
    if num_ids is not None:
        return num_ids
    if fraction is not None:
        return max(1, round(fraction * available))
    return 0


def carve_validation(
    train: Split, *, num_ids: int | None, fraction: float | None, seed: int
) -> TrainValSplits:
    """Hold out identities of `train` (seeded) as a validation query/gallery.

    Per held-out identity, one image per camera (seeded choice) becomes a query and the rest
    the gallery. Identities seen by one camera only are held out only when too few multi-camera
    identities exist; their query and gallery then get distinct camera ids, which is noted.
    """
    by_pid: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in train.records:
        by_pid[record.pid].append(record)
    count = _held_out_count(num_ids, fraction, len(by_pid))
    if count == 0:
        return TrainValSplits(
            train=train,
            val_query=make_split("val_query", []),
            val_gallery=make_split("val_gallery", []),
            notes=(),
        )
    if count >= len(by_pid):
        raise DatasetError(
            f"the validation split asks for {count} identities but training has only "
            f"{len(by_pid)}, so none would be left to train on"
        )
    rng = np.random.default_rng(seed)
    multi_cam = sorted(pid for pid, items in by_pid.items() if len({r.camid for r in items}) > 1)
    single_cam = sorted(set(by_pid) - set(multi_cam))
    order = [int(pid) for pid in rng.permutation(multi_cam)]
    order += [int(pid) for pid in rng.permutation(single_cam)] if single_cam else []
    held_out = sorted(order[:count])
    queries: list[ImageRecord] = []
    gallery: list[ImageRecord] = []
    single_cam_held: list[int] = []
    for pid in held_out:
        items = by_pid[pid]
        if len(items) < 2:
            gallery.extend(items)
            continue
        picks = [items[int(i)] for i in rng.permutation(len(items))]
        cameras = sorted({record.camid for record in items})
        if len(cameras) > 1:
            chosen = {camid: next(r for r in picks if r.camid == camid) for camid in cameras}
            queries.extend(chosen.values())
            gallery.extend(r for r in items if r not in chosen.values())
        else:
            single_cam_held.append(pid)
            queries.append(picks[0])
            gallery.extend(dataclasses.replace(r, camid=r.camid + 1) for r in picks[1:])
    held = set(held_out)
    notes = [f"validation: held out {len(held_out)} training identities (seed {seed})"]
    if single_cam_held:
        notes.append(
            f"validation: {len(single_cam_held)} held-out identities have one camera; their "
            "gallery images were given a distinct camera id so their queries can match"
        )
    remaining = relabel_contiguous([r for r in train.records if r.pid not in held])
    return TrainValSplits(
        train=remaining,
        val_query=make_split("val_query", queries),
        val_gallery=make_split("val_gallery", gallery),
        notes=tuple(notes),
    )


def label_map_digest(train: Split) -> str:
    """A fingerprint of which images carry which training label (first 16 hex digits of a
    SHA-256): two runs whose digests are equal classify the same images into the same class
    indices, so their logits can be compared class by class (distillation).

    Each image is named by its dataset and its last two path parts (the file name, and the
    identity folder of folder layouts), so the digest does not depend on where the data lives.
    """
    lines = sorted(
        f"{record.pid}\t{record.dataset}\t{Path(record.path).parent.name}/{Path(record.path).name}"
        for record in train.records
    )
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]
