"""Typed image records and the train / query / gallery split objects every dataset produces."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One labelled image.

    `pid` and `camid` are the raw integers of the benchmark for query/gallery records (evaluation
    compares them as they are); training records are relabelled to 0..N-1 by `relabel_train`.
    `dataset` is the registry name of the dataset the record came from.
    """

    path: Path
    pid: int
    camid: int
    dataset: str


@dataclass(frozen=True, slots=True)
class Split:
    """An ordered, immutable list of records, with the counts that `reid data info` prints."""

    name: str
    records: tuple[ImageRecord, ...]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def pids(self) -> frozenset[int]:
        return frozenset(record.pid for record in self.records)

    @property
    def camids(self) -> frozenset[int]:
        return frozenset(record.camid for record in self.records)

    def summary(self) -> dict[str, int]:
        """`{"ids": ..., "cams": ..., "images": ...}` as the loader sees this split."""
        return {"ids": len(self.pids), "cams": len(self.camids), "images": len(self.records)}


@dataclass(frozen=True, slots=True)
class DatasetSplits:
    """What one dataset layout yields: training records plus an evaluation query and gallery.

    `notes` are human-readable facts about the scan (junk dropped, distractors kept, camera ids
    assigned) that `reid data info` shows and the run logs.
    """

    name: str
    train: Split
    query: Split
    gallery: Split
    notes: tuple[str, ...] = field(default_factory=tuple)


def make_split(name: str, records: Sequence[ImageRecord]) -> Split:
    """A `Split` holding `records` in the order given."""
    return Split(name=name, records=tuple(records))
