"""Data config: which datasets, the validation split, the sampler and the loaders.

A dataset entry's `name` picks the on-disk layout (the dataset registry in `data/datasets/`) and,
for layouts with options, its own option block named after it (e.g. `cuhk03: {variant: labeled}`).
"""

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from reid_platform.config.base import Float, Section, VariantSection

DatasetName = Literal[
    "market1501",
    "dukemtmc",
    "msmt17",
    "cuhk03",
    "veri",
    "vehicleid",
    "veriwild",
    "manifest",
    "folder",
    "synthetic",
]


class MSMT17Options(Section):
    """`version: auto` picks MSMT17_V2 when present, else MSMT17_V1."""

    version: Literal["auto", "v1", "v2"] = "auto"


class CUHK03Options(Section):
    """New (767/700) protocol; `labeled` (hand-drawn boxes) or `detected` (DPM boxes)."""

    variant: Literal["labeled", "detected"] = "labeled"


class VehicleIDOptions(Section):
    """Test list 800 / 1600 / 2400 ids; one gallery image per id drawn with `gallery_seed`."""

    test_size: Literal["small", "medium", "large"] = "small"
    gallery_seed: int = 0


class VeRiWildOptions(Section):
    """Test list 3000 / 5000 / 10000 ids."""

    test_size: Literal["small", "medium", "large"] = "small"


class ManifestOptions(Section):
    """A CSV with columns `path,pid,camid[,split]`; relative paths resolve against the root."""

    file: str = "manifest.csv"


class FolderOptions(Section):
    """`root/{train,query,gallery}/<identity>/<image>`; camera ids from `camera_pattern` if set.

    `camera_pattern` is a regular expression whose first group is the camera number in the file
    name (e.g. `_c(\\d+)`); without it query and gallery get distinct camera ids (0 and 1).
    """

    camera_pattern: str | None = None


class SyntheticOptions(Section):
    """The built-in synthetic multi-camera benchmark, generated on first use into the root."""

    ids: int = Field(120, ge=4)
    cams: int = Field(4, ge=2)
    images_per_id: int = Field(12, ge=2)
    height: int = Field(128, ge=16)
    width: int = Field(64, ge=8)
    seed: int = 0


class DatasetConfig(VariantSection):
    """One dataset: its registry name, its root folder and (for some layouts) an option block."""

    selector: ClassVar[str] = "name"
    variant_blocks: ClassVar[tuple[str, ...]] = (
        "msmt17",
        "cuhk03",
        "vehicleid",
        "veriwild",
        "manifest",
        "folder",
        "synthetic",
    )
    name: DatasetName
    root: str
    msmt17: MSMT17Options = MSMT17Options()
    cuhk03: CUHK03Options = CUHK03Options()
    vehicleid: VehicleIDOptions = VehicleIDOptions()
    veriwild: VeRiWildOptions = VeRiWildOptions()
    manifest: ManifestOptions = ManifestOptions()
    folder: FolderOptions = FolderOptions()
    synthetic: SyntheticOptions = SyntheticOptions()


class ValidationSplitConfig(Section):
    """Identities held out of training for checkpoint selection and the search objective.

    Give `num_ids` or `fraction` (of the training identities), not both; neither means no
    validation split. For each held-out identity one image per camera becomes a query and the
    rest the gallery (a query needs a match in another camera to count).
    """

    num_ids: int | None = Field(None, ge=1)
    fraction: Float | None = Field(None, gt=0.0, lt=1.0)
    seed: int = 0

    @model_validator(mode="after")
    def _one_size(self) -> Self:
        if self.num_ids is not None and self.fraction is not None:
            raise ValueError("give either num_ids or fraction, not both")
        return self

    @property
    def enabled(self) -> bool:
        return self.num_ids is not None or self.fraction is not None


class SamplerConfig(VariantSection):
    """Training sampler.

    `identity`: P identities × K instances (`num_instances` = K, P = batch_size / K);
    `balanced_identity`: the same, preferring K−1 images from other cameras (vehicles);
    `shuffle`: a plain shuffled stream.
    """

    kind: Literal["identity", "balanced_identity", "shuffle"] = "identity"
    num_instances: int = Field(4, ge=1)


class DataLoaderConfig(Section):
    """Global batch sizes (split over data-parallel workers) and loader processes per worker."""

    batch_size: int = Field(64, ge=1)
    test_batch_size: int = Field(128, ge=1)
    num_workers: int = Field(2, ge=0)


class DataConfig(Section):
    """Training datasets (ids prefixed per dataset when several), test datasets and loaders."""

    train: tuple[DatasetConfig, ...] = Field(min_length=1)
    test: tuple[DatasetConfig, ...] = Field(min_length=1)
    validation: ValidationSplitConfig = ValidationSplitConfig()
    sampler: SamplerConfig = SamplerConfig()
    loader: DataLoaderConfig = DataLoaderConfig()

    @model_validator(mode="after")
    def _batch_fits_sampler(self) -> Self:
        if self.sampler.kind != "shuffle" and self.loader.batch_size % self.sampler.num_instances:
            raise ValueError(
                f"loader.batch_size ({self.loader.batch_size}) must be a multiple of "
                f"sampler.num_instances ({self.sampler.num_instances})"
            )
        return self
