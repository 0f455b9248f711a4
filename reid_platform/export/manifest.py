"""`manifest.json`: which artifacts a folder holds, how to feed them, how well and fast they ran.

One schema everywhere (a checkpoint's `export/`, a run's `export/` artifacts, the folder
`reid fetch` writes): a `ManifestFile` listing `ExportManifest` records (one per exported
artifact, a file beside the manifest) and `ExportFailure` records (a format that was skipped or
failed, and why). Re-exporting merges into the existing file (`ManifestFile.merged`). Fetch
re-hashes an artifact against its record's `sha256`. JSON via pydantic's dataclass adapter, so
reading validates every field and type (unknown keys from newer writers are ignored).
"""

import hashlib
import importlib.metadata
import os
import platform
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter, ValidationError

from reid_platform.export.artifact_names import Format, Precision, artifact_name
from reid_platform.export.embedder import InputContract
from reid_platform.export.errors import ExportError
from reid_platform.export.onnx_export import OnnxExport
from reid_platform.export.parity import ParityReport
from reid_platform.export.speed import SpeedReport
from reid_platform.export.trt_build import EngineBuild
from reid_platform.export.validation_map import MapComparison

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
"""Version of the file schema; 1 was a single artifact's record at the top level."""
TOOL_PACKAGES = (
    "reid-platform",
    "torch",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "numpy",
    "tensorrt",
    "tensorrt-cu13",
    "tensorrt-cu12",
)
"""Distributions whose versions a manifest records (those installed)."""


@dataclass(frozen=True)
class ExportManifest:
    """One exported artifact (`artifact`, a file name beside the manifest) and its record.

    input / input_shape: the preprocessing contract; shape ("batch", 3, H, W), batch dynamic.
    output_name / embedding_dim / normalized: the (batch, D) output and whether rows are unit.
    parity, validation_map, speed: measured at export time (None where not measured).
    tensorrt_profile: (min, opt, max) batch of a TensorRT engine's optimisation profile.

    `artifact` must be `artifact_name(format, precision)`: it is joined to folders on fetch, so
    a name with a path in it (`../x.onnx`) is refused (`ExportError` naming the field).
    """

    format: Format
    precision: Precision
    artifact: str
    sha256: str
    input: InputContract
    input_shape: tuple[str | int, ...]
    output_name: str
    embedding_dim: int
    normalized: bool
    opset: int
    parity: ParityReport | None = None
    validation_map: MapComparison | None = None
    speed: SpeedReport | None = None
    config_hash: str | None = None
    source_checkpoint: str | None = None
    tensorrt_profile: tuple[int, int, int] | None = None
    tool_versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        expected = artifact_name(self.format, self.precision)
        if self.artifact != expected:
            raise ExportError(
                f"the artifact field of the {self.format} {self.precision} export is "
                f"{self.artifact!r}, but that export is always named {expected!r}"
            )

    @property
    def key(self) -> tuple[Format, Precision]:
        return (self.format, self.precision)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def tool_versions(packages: Sequence[str] = TOOL_PACKAGES) -> dict[str, str]:
    """Installed versions of `packages` (absent ones left out) and of Python."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class ExportChecks:
    """What verification measured for an artifact, and where it came from (all optional)."""

    parity: ParityReport | None = None
    validation_map: MapComparison | None = None
    speed: SpeedReport | None = None
    config_hash: str | None = None
    source_checkpoint: str | None = None


def _manifest(
    source: OnnxExport,
    checks: ExportChecks,
    *,
    format: Format,
    precision: Precision,
    artifact: Path,
    tool_versions: dict[str, str],
    tensorrt_profile: tuple[int, int, int] | None = None,
) -> ExportManifest:
    """The fields every format shares: the input contract of the ONNX export `source`, the
    artifact's name and hash (computed now), and the checks."""
    return ExportManifest(
        format=format,
        precision=precision,
        artifact=artifact.name,
        sha256=file_sha256(artifact),
        input=source.input,
        input_shape=source.input.shape,
        output_name=source.output_name,
        embedding_dim=source.embedding_dim,
        normalized=source.normalized,
        opset=source.opset,
        parity=checks.parity,
        validation_map=checks.validation_map,
        speed=checks.speed,
        config_hash=checks.config_hash,
        source_checkpoint=checks.source_checkpoint,
        tensorrt_profile=tensorrt_profile,
        tool_versions=tool_versions,
    )


def onnx_manifest(
    exported: OnnxExport,
    *,
    parity: ParityReport | None = None,
    validation_map: MapComparison | None = None,
    speed: SpeedReport | None = None,
    config_hash: str | None = None,
    source_checkpoint: str | None = None,
) -> ExportManifest:
    """The manifest of an ONNX export, hashing its file now."""
    checks = ExportChecks(parity, validation_map, speed, config_hash, source_checkpoint)
    return _manifest(
        exported,
        checks,
        format="onnx",
        precision=exported.precision,
        artifact=exported.path,
        tool_versions=tool_versions(),
    )


def tensorrt_manifest(
    build: EngineBuild,
    source: OnnxExport,
    *,
    parity: ParityReport | None = None,
    validation_map: MapComparison | None = None,
    speed: SpeedReport | None = None,
    config_hash: str | None = None,
    source_checkpoint: str | None = None,
) -> ExportManifest:
    """The manifest of a TensorRT engine built from the ONNX export `source`, hashed now."""
    profile = build.profile
    checks = ExportChecks(parity, validation_map, speed, config_hash, source_checkpoint)
    return _manifest(
        source,
        checks,
        format="tensorrt",
        precision=build.precision,
        artifact=build.path,
        tensorrt_profile=(profile.min, profile.opt, profile.max),
        tool_versions=tool_versions() | {"tensorrt_runtime": build.tensorrt_version},
    )


FailureStatus = Literal["skipped", "failed"]


@dataclass(frozen=True)
class ExportFailure:
    """A format that produced no artifact: `skipped` (its tools are missing here, e.g. TensorRT
    on a CPU machine) or `failed` (the export or its verification raised); `reason` is one
    sentence."""

    format: Format
    precision: Precision
    status: FailureStatus
    reason: str

    @property
    def key(self) -> tuple[Format, Precision]:
        return (self.format, self.precision)


@dataclass(frozen=True)
class ManifestFile:
    """The content of one `manifest.json`: the artifacts exported into its folder and the
    formats that could not be. At most one export and one failure per (format, precision); a
    pair may have both (a failed re-export keeps the earlier, still valid artifact)."""

    exports: tuple[ExportManifest, ...] = ()
    failures: tuple[ExportFailure, ...] = ()
    manifest_version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        for kind, keys in (
            ("exports", [entry.key for entry in self.exports]),
            ("failures", [entry.key for entry in self.failures]),
        ):
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            if repeated:
                names = ", ".join(" ".join(key) for key in repeated)
                raise ExportError(f"an export manifest lists {names} more than once in {kind}")

    def find(self, format: Format, precision: Precision | None = None) -> ExportManifest:
        """The export of `format` at `precision` (None: the only export of that format).

        Raises `ExportError` saying what the file holds instead: the precisions to choose from
        when several match, else the exports listed and any recorded failure of `format`.
        """
        matches = [
            entry
            for entry in self.exports
            if entry.format == format and precision in (None, entry.precision)
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            choices = ", ".join(entry.precision for entry in matches)
            raise ExportError(
                f"there are {len(matches)} {format} exports ({choices}); name the precision to use"
            )
        wanted = f"{format} {precision}" if precision is not None else format
        listed = ", ".join(f"{e.format} {e.precision}" for e in self.exports) or "nothing"
        failures = [
            f"{failure.format} {failure.precision} {failure.status}: {failure.reason}"
            for failure in self.failures
            if failure.format == format and precision in (None, failure.precision)
        ]
        because = f" ({'; '.join(failures)})" if failures else ""
        raise ExportError(f"there is no {wanted} export{because}; the manifest lists {listed}")

    def merged(self, newer: "ManifestFile") -> "ManifestFile":
        """This file updated with `newer`, per (format, precision): a newer export replaces the
        old export and clears the old failure; a newer failure replaces the old failure but keeps
        the old export (its artifact is still valid). Order: old entries in place, new appended.
        """
        exports = {entry.key: entry for entry in self.exports}
        failures = {entry.key: entry for entry in self.failures}
        for entry in newer.exports:
            exports[entry.key] = entry
            failures.pop(entry.key, None)
        for failure in newer.failures:
            failures[failure.key] = failure
        return ManifestFile(tuple(exports.values()), tuple(failures.values()))


_ADAPTER = TypeAdapter(ManifestFile)


def write_manifest_file(manifest: ManifestFile, folder: Path) -> Path:
    """Write `manifest` as indented JSON to `folder/manifest.json` (folder created); → its path.

    Atomic: written to a temporary file in `folder`, then renamed over the old manifest, so a
    process killed (or a disk filling up) mid-write leaves the previous manifest intact.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / MANIFEST_NAME
    # A unique name opened normally (not mkstemp): the file gets the usual umask permissions.
    temporary = folder / f".{MANIFEST_NAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with temporary.open("wb") as stream:
            stream.write(_ADAPTER.dump_json(manifest, indent=2) + b"\n")
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(target)  # os.replace: atomic within one file system
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def read_manifest_file(path: Path) -> ManifestFile:
    """Read and validate `manifest.json` in a folder (or a manifest file given directly).

    Raises `ExportError` (one sentence) when it is missing, not valid JSON, has a field of the
    wrong type, or was written with another schema version.
    """
    path = Path(path)
    source = path / MANIFEST_NAME if path.is_dir() else path
    if not source.is_file():
        raise ExportError(f"export manifest {source} does not exist")
    try:
        manifest = _ADAPTER.validate_json(source.read_bytes())
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ExportError(
            f"export manifest {source} is invalid at {where or 'top level'}: {problem['msg']}"
        ) from None
    except ExportError as error:  # a record's own check (`__post_init__`)
        raise ExportError(f"export manifest {source} is invalid: {error}") from None
    if manifest.manifest_version != MANIFEST_VERSION:
        raise ExportError(
            f"export manifest {source} has schema version {manifest.manifest_version}, and this "
            f"reid-platform reads version {MANIFEST_VERSION}; export the model again"
        )
    return manifest


def verify_artifact(manifest: ExportManifest, artifact_path: Path) -> None:
    """Raise `ExportError` unless `artifact_path` exists and hashes to `manifest.sha256`."""
    artifact_path = Path(artifact_path)
    if not artifact_path.is_file():
        raise ExportError(f"exported artifact {artifact_path} does not exist")
    actual = file_sha256(artifact_path)
    if actual != manifest.sha256:
        raise ExportError(
            f"exported artifact {artifact_path} has SHA-256 {actual[:16]}…, but its manifest "
            f"records {manifest.sha256[:16]}…: the file is corrupt or not the one exported"
        )
