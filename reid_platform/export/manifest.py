"""`manifest.json`: what an exported artifact is, how to feed it, how well and fast it ran.

Written beside every export (`export/manifest.json` in a run), read back by fetch, which
re-hashes the artifact against `sha256`. JSON via pydantic's dataclass adapter, so reading
validates every field and type (unknown keys from newer writers are ignored).
"""

import hashlib
import importlib.metadata
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter, ValidationError

from reid_platform.export.embedder import InputContract
from reid_platform.export.errors import ExportError
from reid_platform.export.onnx_export import OnnxExport
from reid_platform.export.parity import ParityReport
from reid_platform.export.speed import SpeedReport
from reid_platform.export.trt_build import EngineBuild
from reid_platform.export.validation_map import MapComparison

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
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

Format = Literal["onnx", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class ExportManifest:
    """One exported artifact (`artifact`, a file name beside the manifest) and its record.

    input / input_shape: the preprocessing contract; shape ("batch", 3, H, W), batch dynamic.
    output_name / embedding_dim / normalized: the (batch, D) output and whether rows are unit.
    parity, validation_map, speed: measured at export time (None where not measured).
    tensorrt_profile: (min, opt, max) batch of a TensorRT engine's optimisation profile.
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
    manifest_version: int = MANIFEST_VERSION


_ADAPTER = TypeAdapter(ExportManifest)


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


def write_manifest(manifest: ExportManifest, path: Path) -> Path:
    """Write `manifest` as indented JSON to `path` (a file, or a folder → `manifest.json`)."""
    path = Path(path)
    target = path / MANIFEST_NAME if path.is_dir() else path
    target.write_bytes(_ADAPTER.dump_json(manifest, indent=2) + b"\n")
    return target


def read_manifest(path: Path) -> ExportManifest:
    """Read and validate a manifest file (or `manifest.json` in a folder)."""
    path = Path(path)
    source = path / MANIFEST_NAME if path.is_dir() else path
    if not source.is_file():
        raise ExportError(f"export manifest {source} does not exist")
    try:
        return _ADAPTER.validate_json(source.read_bytes())
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ExportError(
            f"export manifest {source} is invalid at {where or 'top level'}: {problem['msg']}"
        ) from None


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
