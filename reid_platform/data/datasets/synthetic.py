"""The synthetic benchmark as a dataset: generated into `root` on first use, then read as Market.

`root` absent or empty: the benchmark is generated there (a one-line notice is logged).
`root` holding a `synthetic.json` with the same parameters: it is read as it is. Anything else
(other files, or a benchmark made with other parameters) is refused with a `DatasetError`:
user data is never overwritten. See `reid_platform.data.synthetic` for what is generated.
"""

import dataclasses
import json
import logging
from pathlib import Path
from typing import ClassVar

from reid_platform.data.datasets.market1501 import Market1501Dataset
from reid_platform.data.datasets.registry import DATASETS
from reid_platform.data.records import DatasetSplits, Split
from reid_platform.data.synthetic import (
    MANIFEST,
    generate_synthetic_benchmark,
    synthetic_parameters,
)
from reid_platform.errors import DatasetError

logger = logging.getLogger(__name__)


def _relabelled(split: Split, name: str) -> Split:
    records = tuple(dataclasses.replace(record, dataset=name) for record in split.records)
    return dataclasses.replace(split, records=records)


@DATASETS.register("synthetic")
class SyntheticDataset:
    """The built-in synthetic multi-camera person benchmark (Market-1501 layout, 128x64 default).

    The parameters are those of `generate_synthetic_benchmark`; the defaults match the config's
    `synthetic` block.
    """

    name: ClassVar[str] = "synthetic"

    def __init__(
        self,
        *,
        root: Path,
        ids: int = 120,
        cams: int = 4,
        images_per_id: int = 12,
        height: int = 128,
        width: int = 64,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.parameters = synthetic_parameters(
            ids=ids, cams=cams, images_per_id=images_per_id, height=height, width=width, seed=seed
        )

    def load(self) -> DatasetSplits:
        """Generate into an absent or empty root, check an existing one, then scan it."""
        if not self.root.exists() or (self.root.is_dir() and not any(self.root.iterdir())):
            logger.info("generating the synthetic benchmark into %s (first use)", self.root)
            try:
                generate_synthetic_benchmark(out=self.root, **self._generator_arguments())
            except DatasetError:
                # Another process (a second Ray worker) may have generated it meanwhile.
                if not (self.root / MANIFEST).is_file():
                    raise
                self._check_existing()
        else:
            self._check_existing()
        splits = Market1501Dataset(root=self.root).load()
        return dataclasses.replace(
            splits,
            name=self.name,
            train=_relabelled(splits.train, self.name),
            query=_relabelled(splits.query, self.name),
            gallery=_relabelled(splits.gallery, self.name),
        )

    def _generator_arguments(self) -> dict[str, int]:
        return {key: value for key, value in self.parameters.items() if key != "version"}

    def _check_existing(self) -> None:
        """Raise unless root holds a synthetic benchmark made with exactly these parameters."""
        manifest = self.root / MANIFEST
        if not self.root.is_dir() or not manifest.is_file():
            raise DatasetError(
                f"synthetic dataset folder {self.root} is not empty and has no {MANIFEST}; "
                "refusing to generate into it (point root at an empty or absent folder)"
            )
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))["parameters"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DatasetError(f"synthetic dataset manifest {manifest} is unreadable") from error
        for key, wanted in self.parameters.items():
            found = recorded.get(key) if isinstance(recorded, dict) else None
            if found != wanted:
                raise DatasetError(
                    f"synthetic dataset folder {self.root} was generated with {key}={found}, "
                    f"not {key}={wanted}; use another root or empty that folder"
                )
