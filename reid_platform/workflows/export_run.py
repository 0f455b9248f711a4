"""`reid export --run`: export a finished run's trained model and log the export into the run.

The model file (`checkpoints/model.pt`) carries the resolved config of the run, so the export
uses the run's own input size, normalisation and validation split: the data roots in that
config are read as given (a relative root resolves against the working directory).
"""

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast, get_args

from mlflow.entities import Run

from reid_platform.data.build import build_data
from reid_platform.errors import ReidError
from reid_platform.export.artifact_names import Format, Precision, artifact_name
from reid_platform.export.manifest import ExportFailure, ExportManifest, ManifestFile
from reid_platform.export.run_export import export_model
from reid_platform.export.trt_availability import tensorrt_unavailable_reason
from reid_platform.export.validation_images import load_validation_images
from reid_platform.modeling.model_file import load_model_file
from reid_platform.tracking.export_runs import (
    export_tags,
    log_export_folder,
    logged_manifest,
    set_export_tags,
)
from reid_platform.tracking.layout import MODEL_CHECKPOINT, export_tag
from reid_platform.tracking.run_artifacts import download_run_model, get_run

logger = logging.getLogger(__name__)

_FINISHED = "FINISHED"
_PRECISION_PARAM = "export.precision"


@dataclass(frozen=True)
class RunExport:
    """What `export_run` made: the new artifact's record and the run's merged manifest."""

    run_id: str
    entry: ExportManifest
    manifest: ManifestFile


def _check_exportable(tracking_uri: str, run_id: str) -> Run:
    run = get_run(run_id, tracking_uri)
    status = run.info.status
    if status == "RUNNING":
        raise ReidError(f"run {run_id} is still RUNNING; export it once it has finished")
    if status != _FINISHED:
        raise ReidError(f"run {run_id} ended {status}; only a FINISHED run can be exported")
    return run


def export_precision(format: Format, asked: Precision | None, configured: Precision) -> Precision:
    """The precision `reid export` uses: the one asked for, else the run config's
    `export.precision`, except fp32 for ONNX when that is int8 (a TensorRT-only precision)."""
    if asked is not None:
        return asked
    return "fp32" if format == "onnx" and configured == "int8" else configured


def _skipped_tags(
    tracking_uri: str, run: Run, precision: Precision | None, reason: str
) -> dict[str, str]:
    """The `reid.export.tensorrt` tag after a skipped attempt: the run's manifest merged with
    the skip, so an engine exported earlier (on a GPU) still shows as exported."""
    configured = run.data.params.get(_PRECISION_PARAM)
    if precision is None:
        # The run's config as logged params (the model file is not downloaded for a skip);
        # fp32 is the config default.
        precision = cast(Precision, configured) if configured in get_args(Precision) else "fp32"
    skip = ExportFailure("tensorrt", precision, "skipped", reason)
    held = logged_manifest(tracking_uri, run.info.run_id) or ManifestFile()
    merged = held.merged(ManifestFile(failures=(skip,)))
    return {export_tag("tensorrt"): export_tags(merged)[export_tag("tensorrt")]}


def _failure_reason(manifest: ManifestFile, format: Format) -> str:
    reasons = [fail.reason for fail in manifest.failures if fail.format == format]
    return reasons[0] if reasons else "no artifact was recorded"


def export_run(
    tracking_uri: str,
    run_id: str,
    *,
    format: Format,
    precision: Precision | None = None,
    work_dir: Path,
) -> RunExport:
    """Export run `run_id`'s model as `format` (`precision`; None: `export_precision` of the
    run config's), verified on its validation images, and log it under `export/`.

    work_dir: scratch space for the downloaded model file and the export folder.
    Raises `ReidError` for a format and precision that do not go together (ONNX int8: before
    anything else, nothing changed), for an unknown or unfinished run, and when the format
    cannot be exported here (TensorRT without its package or a GPU: checked before any
    download) or the export fails; then the run's `reid.export.<format>` tag records the
    attempt next to what the run already holds (`export_tags`). The run's
    `export/latency_ms` keeps its meaning (decision 3, from the run's own export config).
    """
    if precision is not None:
        artifact_name(format, precision)  # bad input: its sentence before any work
    run = _check_exportable(tracking_uri, run_id)
    if format == "tensorrt" and (reason := tensorrt_unavailable_reason()) is not None:
        set_export_tags(tracking_uri, run_id, _skipped_tags(tracking_uri, run, precision, reason))
        raise ReidError(reason)
    work_dir = Path(work_dir)
    loaded = load_model_file(download_run_model(run_id, tracking_uri, work_dir / "model"))
    config = loaded.config
    precision = export_precision(format, precision, config.export.precision)
    artifact_name(format, precision)
    images = load_validation_images(
        config, build_data(config.data), limit=config.export.validation_images
    )
    out = Path(tempfile.mkdtemp(prefix="export-", dir=work_dir))
    made = export_model(
        loaded.model,
        config,
        out,
        images=images,
        formats=[format],
        precision=precision,
        source_checkpoint=MODEL_CHECKPOINT,
    )
    merged = log_export_folder(tracking_uri, run_id, out, run_export_config=config.export)
    exported = [entry for entry in made.exports if entry.format == format]
    if not exported:
        raise ReidError(f"{format} export of run {run_id} failed: {_failure_reason(made, format)}")
    logger.info("exported run %s as %s", run_id, ", ".join(e.artifact for e in exported))
    return RunExport(run_id=run_id, entry=exported[0], manifest=merged)
