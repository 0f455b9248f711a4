"""Data config → scanned splits, validation hold-out and data loaders (the data stage's build)."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from reid_platform.config.data import DataConfig, DatasetConfig
from reid_platform.config.input import InputConfig
from reid_platform.data.datasets.build import build_dataset
from reid_platform.data.image_dataset import ImageDataset
from reid_platform.data.records import DatasetSplits, ImageRecord, Split
from reid_platform.data.samplers import RankShardedBatchSampler, build_train_batch_sampler
from reid_platform.data.splits import carve_validation, combine_training_records
from reid_platform.data.transforms import build_test_transform, build_train_transform

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReidData:
    """Everything the data stage hands to training and evaluation.

    `train` pids are training labels 0..num_classes-1; the validation query/gallery hold whole
    identities removed from training; `test` keeps each test dataset's raw benchmark ids.
    """

    train: Split
    val_query: Split
    val_gallery: Split
    test: tuple[DatasetSplits, ...]
    notes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.train.pids)


def build_data(config: DataConfig) -> ReidData:
    """Scan every dataset once, combine training sets and carve the validation split."""
    # Keyed by the whole (frozen) entry: the same root read with other options is another set.
    scanned: dict[DatasetConfig, DatasetSplits] = {}
    for dataset in (*config.train, *config.test):
        if dataset not in scanned:
            scanned[dataset] = build_dataset(dataset)
    train_sets = [scanned[d] for d in config.train]
    test_sets = tuple(scanned[d] for d in config.test)
    validation = config.validation
    carved = carve_validation(
        combine_training_records(train_sets),
        num_ids=validation.num_ids,
        fraction=validation.fraction,
        seed=validation.seed,
    )
    notes = tuple(note for splits in scanned.values() for note in splits.notes) + carved.notes
    for note in notes:
        logger.info(note)
    return ReidData(
        train=carved.train,
        val_query=carved.val_query,
        val_gallery=carved.val_gallery,
        test=test_sets,
        notes=notes,
    )


def build_train_loader(
    config: DataConfig,
    input_config: InputConfig,
    train: Split,
    *,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
) -> DataLoader:
    """The training loader of one data-parallel rank; call `batch_sampler.set_epoch` per epoch.

    Batches are dicts: `images` uint8 (B, 3, H, W), `pids` (B,) training labels, `camids` (B,),
    `index` (B,). The batch sampler shards itself, so it must not be replaced by a framework.
    """
    sampler: RankShardedBatchSampler = build_train_batch_sampler(
        config.sampler,
        pids=[record.pid for record in train.records],
        camids=[record.camid for record in train.records],
        global_batch_size=config.loader.batch_size,
        rank=rank,
        world_size=world_size,
        seed=seed,
    )
    dataset = ImageDataset(
        train.records,
        build_train_transform(input_config),
        labels=[record.pid for record in train.records],
    )
    workers = config.loader.num_workers
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        # Not persistent: workers restart each epoch and seed from the loader's generator,
        # which training re-seeds per epoch so a resumed epoch draws what the original drew.
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(seed * 1000 + rank),
    )


def build_test_loader(
    config: DataConfig, input_config: InputConfig, records: Sequence[ImageRecord]
) -> DataLoader:
    """A loader over `records` in order with test transforms and raw ids, for feature extraction."""
    dataset = ImageDataset(records, build_test_transform(input_config), labels=None)
    return DataLoader(
        dataset,
        batch_size=config.loader.test_batch_size,
        shuffle=False,
        num_workers=config.loader.num_workers,
        pin_memory=torch.cuda.is_available(),
    )
