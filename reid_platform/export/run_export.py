"""Export one model in every requested format into a folder, verified, with its `manifest.json`.

    manifest = export_model(model, config, out_dir, images=load_validation_images(...))

Each format is exported, checked for parity with PyTorch, its validation mAP and speed measured,
and recorded; a format that cannot run here is recorded as an `ExportFailure` instead of raising
(`skipped`: TensorRT or a GPU is missing; `failed`: the export or its checks raised). The new
records are merged into the folder's existing `manifest.json` (`ManifestFile.merged`), so
exporting fp16 after fp32 lists both. Each artifact is written in a scratch folder and moved
into place only once verified: a failed re-export never replaces a valid artifact.
"""

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from reid_platform import metric_names
from reid_platform.config import ReidConfig, config_hash
from reid_platform.errors import ReidError
from reid_platform.evaluation import build_evaluator
from reid_platform.export.artifact_names import Format, Precision, artifact_name
from reid_platform.export.embedder import ComputeDtype
from reid_platform.export.manifest import (
    MANIFEST_NAME,
    ExportFailure,
    ExportManifest,
    ManifestFile,
    read_manifest_file,
    tensorrt_manifest,
    write_manifest_file,
)
from reid_platform.export.onnx_export import OnnxExport, export_onnx
from reid_platform.export.onnx_runtime import as_float32_images
from reid_platform.export.pipeline import (
    MIN_COSINE,
    export_verified_onnx,
    parity_images,
    require_parity,
)
from reid_platform.export.trt_availability import (
    require_tensorrt,
    tensorrt_major,
    tensorrt_unavailable_reason,
)
from reid_platform.export.trt_build import BatchProfile, build_engine, onnx_precision_for
from reid_platform.export.trt_run import TensorRTEmbedder, measure_tensorrt_speed, verify_engine
from reid_platform.export.validation_images import ValidationImages
from reid_platform.export.validation_map import validation_map

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500
"""A failure's reason is cut to this length (it also becomes an MLflow tag value)."""

CALIBRATION_BATCH = 8


def failure_reason(error: BaseException) -> str:
    """One line saying why an export failed: a `ReidError`'s own sentence, otherwise the
    exception type and the first line of its message; at most `MAX_REASON_CHARS`."""
    text = str(error).strip()
    if not isinstance(error, ReidError):
        first_line = text.splitlines()[0] if text else "no message"
        text = f"unexpected {type(error).__name__}: {first_line}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def export_model(
    model: nn.Module,
    config: ReidConfig,
    out_dir: Path,
    *,
    images: ValidationImages,
    formats: Sequence[Format] | None = None,
    precision: Precision | None = None,
    source_checkpoint: str | None = None,
    measure: bool = True,
) -> ManifestFile:
    """Export `model` (built from `config`, eval-mode copy advised) in each of `formats` at
    `precision` (None: `config.export.formats` / `.precision`) into `out_dir`; → the folder's
    merged manifest, also written to `out_dir/manifest.json`.

    images: the verification images (`load_validation_images`); mAP only when `source` is
        `validation`. source_checkpoint: recorded in each record (e.g. "model.pt").
    measure: time each export against eager PyTorch. Never raises for a format; raises
        `ExportError` only when `out_dir` holds an unreadable `manifest.json`.
    """
    out_dir = Path(out_dir)
    existing = (
        read_manifest_file(out_dir) if (out_dir / MANIFEST_NAME).is_file() else ManifestFile()
    )
    job = _ExportJob(
        model=model,
        config=config,
        out_dir=out_dir,
        images=images,
        precision=precision if precision is not None else config.export.precision,
        source_checkpoint=source_checkpoint,
        measure=measure,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    exports: list[ExportManifest] = []
    failures: list[ExportFailure] = []
    for format in dict.fromkeys(config.export.formats if formats is None else formats):
        outcome = job.attempt(format)
        if isinstance(outcome, ExportFailure):
            failures.append(outcome)
        else:
            exports.append(outcome)
    merged = existing.merged(ManifestFile(tuple(exports), tuple(failures)))
    write_manifest_file(merged, out_dir)
    return merged


@dataclass
class _ExportJob:
    """The settings shared by the formats of one `export_model` call, and the ONNX files it
    has placed in `out_dir` (reused as the source of a TensorRT engine)."""

    model: nn.Module
    config: ReidConfig
    out_dir: Path
    images: ValidationImages
    precision: Precision
    source_checkpoint: str | None
    measure: bool

    def __post_init__(self) -> None:
        self.onnx_files: dict[ComputeDtype, OnnxExport] = {}

    def attempt(self, format: Format) -> ExportManifest | ExportFailure:
        """Export `format`; a missing tool or any exception becomes an `ExportFailure`."""
        if format == "tensorrt" and (reason := tensorrt_unavailable_reason()) is not None:
            logger.warning("tensorrt export skipped: %s", reason)
            return ExportFailure(format, self.precision, "skipped", reason)
        try:
            with tempfile.TemporaryDirectory(prefix=".export-", dir=self.out_dir) as scratch:
                manifest = (
                    self._onnx(Path(scratch)) if format == "onnx" else self._tensorrt(Path(scratch))
                )
        except Exception as error:  # any failure of one format is recorded, never raised
            reason = failure_reason(error)
            logger.warning("%s %s export failed: %s", format, self.precision, reason, exc_info=True)
            return ExportFailure(format, self.precision, "failed", reason)
        return manifest

    def _place(self, scratch_file: Path) -> Path:
        """Move a verified artifact from the scratch folder into `out_dir` (atomic rename)."""
        target = self.out_dir / scratch_file.name
        scratch_file.replace(target)
        return target

    def _onnx(self, scratch: Path) -> ExportManifest:
        if self.precision == "int8":
            artifact_name("onnx", self.precision)  # raises the one sentence
        onnx_precision: ComputeDtype = "fp16" if self.precision == "fp16" else "fp32"
        verified = export_verified_onnx(
            self.model,
            self.config,
            scratch,
            query=self.images.query,
            gallery=self.images.gallery,
            precision=onnx_precision,
            source_checkpoint=self.source_checkpoint,
            measure=self.measure,
            measure_map=self.images.measures_map,
        )
        placed = self._place(verified.export.path)
        self.onnx_files[onnx_precision] = replace(verified.export, path=placed)
        return verified.manifest

    def _tensorrt(self, scratch: Path) -> ExportManifest:
        trt = require_tensorrt()
        onnx_precision = onnx_precision_for(self.precision, tensorrt_major(trt))
        source = self.onnx_files.get(onnx_precision) or export_onnx(
            self.model,
            self.config.export,
            scratch / artifact_name("onnx", onnx_precision),
            precision=onnx_precision,
        )
        export = self.config.export
        build = build_engine(
            source.path,
            scratch / artifact_name("tensorrt", self.precision),
            precision=self.precision,
            profile=BatchProfile(
                1, min(export.throughput_batch, export.max_batch), export.max_batch
            ),
            calibration_images=(
                as_float32_images(self.images.images[: export.calibration_images])
                if self.precision == "int8"
                else None
            ),
            calibration_batch=min(CALIBRATION_BATCH, len(self.images), export.calibration_images),
        )
        engine = build.path
        checks = parity_images(self.images.query, self.images.gallery)
        parity = verify_engine(engine, self.model, checks, normalized=source.normalized)
        cosine_key = "tensorrt-fp32" if self.precision == "fp32" else self.precision
        require_parity(
            parity, what=f"{self.precision} TensorRT engine", min_cosine=MIN_COSINE[cosine_key]
        )
        maps = None
        if self.images.measures_map:
            maps = validation_map(
                TensorRTEmbedder(engine),
                self.model,
                self.images.query,
                self.images.gallery,
                evaluator=build_evaluator(self.config.evaluation),
                normalized=source.normalized,
            )
        speed = None
        if self.measure:
            speed = measure_tensorrt_speed(
                self.model,
                engine,
                normalized=source.normalized,
                throughput_batch=export.throughput_batch,
            )
        placed = self._place(engine)
        return tensorrt_manifest(
            replace(build, path=placed),
            source,
            parity=parity,
            validation_map=maps,
            speed=speed,
            config_hash=config_hash(self.config),
            source_checkpoint=self.source_checkpoint,
        )


def speed_metrics(
    manifest: ManifestFile, formats: Sequence[Format], *, precision: Precision | None = None
) -> dict[str, float]:
    """`export/latency_ms` (batch-1 median, ms) and `export/images_per_sec` (throughput at the
    export's throughput batch) of the first of `formats`, in that order, whose export has a
    speed measurement; {} when none has. Within a format, the first such record in the file
    (only those at `precision` when given).
    """
    for format in formats:
        for entry in manifest.exports:
            if entry.format != format or precision not in (None, entry.precision):
                continue
            if entry.speed is not None:
                return {
                    metric_names.EXPORT_LATENCY_MS: entry.speed.exported.latency_ms,
                    metric_names.EXPORT_IMAGES_PER_SEC: entry.speed.exported.throughput,
                }
    return {}
