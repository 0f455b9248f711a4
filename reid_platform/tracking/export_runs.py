"""A run's exports in MLflow: logging an export folder under `export/`, downloading one back.

The run's `export/manifest.json` lists every artifact the run holds (the schema of
`export.manifest.ManifestFile`). Logging a folder merges its manifest into the run's
(`ManifestFile.merged`: a new success replaces the old artifact of the same format and
precision, a new failure keeps an old success), uploads the folder's artifacts and then the
merged manifest last, so the manifest never lists a file that is not uploaded yet. Two exports
of one run at the same time could each miss the other's entry; exports of a run are sequential.

A re-export overwrites `export/<artifact>`; a registered version keeps its own copy under
`export/versions/<sha256[:12]>/` (see `tracking.registry`), which nothing overwrites.
"""

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TypeVar

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from reid_platform.config.export import ExportConfig
from reid_platform.errors import ReidError
from reid_platform.export.artifact_names import Format, Precision
from reid_platform.export.errors import ExportError
from reid_platform.export.manifest import (
    MANIFEST_NAME,
    ExportManifest,
    ManifestFile,
    file_sha256,
    read_manifest_file,
    verify_artifact,
    write_manifest_file,
)
from reid_platform.export.run_export import speed_metrics
from reid_platform.tracking.layout import (
    EXPORT_DIR,
    EXPORT_MANIFEST,
    EXPORT_TAG_REASON_LIMIT,
    export_tag,
)
from reid_platform.tracking.retry import call_with_retries
from reid_platform.tracking.run_artifacts import get_run

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A TensorRT engine of a few hundred MB goes to a proxied artifact store in one request.
_UPLOAD_TIMEOUT_S = 300
_HASH_CHARS = 12


def _retrying(
    tracking_uri: str, action: Callable[[], T], what: str, *, budget_s: float = 60.0
) -> T:
    return call_with_retries(
        action,
        what=what,
        tracking_uri=tracking_uri,
        budget_s=budget_s,
        attempt_timeout_s=_UPLOAD_TIMEOUT_S,
    )


def _has_manifest(
    client: MlflowClient, tracking_uri: str, run_id: str, folder: str = EXPORT_DIR
) -> bool:
    entries = _retrying(
        tracking_uri,
        lambda: client.list_artifacts(run_id, folder),
        f"listing {folder} of run {run_id}",
    )
    return any(entry.path == f"{folder}/{MANIFEST_NAME}" for entry in entries)


def _download(
    client: MlflowClient, tracking_uri: str, run_id: str, artifact: str, folder: Path
) -> Path:
    local = _retrying(
        tracking_uri,
        lambda: client.download_artifacts(run_id, artifact, str(folder)),
        f"downloading {artifact} of run {run_id}",
    )
    return Path(local)


def logged_manifest(tracking_uri: str, run_id: str) -> ManifestFile | None:
    """The run's `export/manifest.json`, or None when the run has no exports logged."""
    client = MlflowClient(tracking_uri=tracking_uri)
    if not _has_manifest(client, tracking_uri, run_id):
        return None
    with tempfile.TemporaryDirectory(prefix="reid-manifest-") as scratch:
        return read_manifest_file(
            _download(client, tracking_uri, run_id, EXPORT_MANIFEST, Path(scratch))
        )


def export_tags(manifest: ManifestFile) -> dict[str, str]:
    """One `reid.export.<format>` tag per format in `manifest` (a run's merged manifest: what
    the run holds, not what the latest attempt did).

    `exported fp32, fp16` for the precisions exported, then `; failed int8: <reason>` for each
    failed or skipped precision without an artifact. A format with nothing exported and one
    failure reads `skipped: <reason>` or `failed: <reason>`. Reasons cut to 500 characters.
    """
    formats = dict.fromkeys(
        [entry.format for entry in manifest.exports] + [fail.format for fail in manifest.failures]
    )
    tags: dict[str, str] = {}
    for format in formats:
        precisions = [entry.precision for entry in manifest.exports if entry.format == format]
        failures = [
            fail
            for fail in manifest.failures
            if fail.format == format and fail.precision not in precisions
        ]
        if not precisions and len(failures) == 1:
            (failure,) = failures
            tags[export_tag(format)] = (
                f"{failure.status}: {failure.reason[:EXPORT_TAG_REASON_LIMIT]}"
            )
            continue
        parts = [f"exported {', '.join(precisions)}"] if precisions else []
        parts += [
            f"{fail.status} {fail.precision}: {fail.reason[:EXPORT_TAG_REASON_LIMIT]}"
            for fail in failures
        ]
        tags[export_tag(format)] = "; ".join(parts)
    return tags


def _metric_step(client: MlflowClient, run_id: str, keys: Sequence[str]) -> int:
    # The step of the newest value already logged under these keys (the final epoch for a
    # training run that exported), so a later export's value becomes the run's current one
    # (MLflow shows the value of the largest step, newest first); 0 for a first export.
    steps = [metric.step for key in keys for metric in client.get_metric_history(run_id, key)]
    return max(steps, default=0)


def _log_speed_metrics(
    client: MlflowClient,
    tracking_uri: str,
    run_id: str,
    manifest: ManifestFile,
    export_config: ExportConfig,
) -> dict[str, float]:
    # Decision 3's meaning, whatever was exported last: the first of the run's configured
    # formats, at the configured precision, from the run's merged manifest.
    values = speed_metrics(manifest, export_config.formats, precision=export_config.precision)
    current = _retrying(
        tracking_uri,
        lambda: client.get_run(run_id).data.metrics,
        f"reading the metrics of run {run_id}",
    )
    if not values or all(current.get(key) == value for key, value in values.items()):
        return {}
    step = _retrying(
        tracking_uri,
        lambda: _metric_step(client, run_id, list(values)),
        f"reading the export metrics of run {run_id}",
    )
    timestamp_ms = int(time.time() * 1000)
    metrics = [Metric(key, float(value), timestamp_ms, step) for key, value in values.items()]
    _retrying(
        tracking_uri,
        partial(client.log_batch, run_id, metrics=metrics),
        f"logging export metrics to run {run_id}",
    )
    return values


def upload_files(
    tracking_uri: str,
    run_id: str,
    files: Sequence[Path],
    artifact_dir: str,
    *,
    retry_budget_s: float = 60.0,
) -> None:
    """Upload `files`, in order, into run `run_id`'s artifact folder `artifact_dir`, each
    with retries."""
    client = MlflowClient(tracking_uri=tracking_uri)
    for local in files:
        _retrying(
            tracking_uri,
            partial(client.log_artifact, run_id, str(local), artifact_path=artifact_dir),
            f"logging {artifact_dir}/{local.name} to run {run_id}",
            budget_s=retry_budget_s,
        )


def log_export_folder(
    tracking_uri: str,
    run_id: str,
    folder: Path,
    *,
    run_export_config: ExportConfig | None = None,
    retry_budget_s: float = 60.0,
) -> ManifestFile:
    """Log the export folder `folder` (its `manifest.json` and the artifacts it lists) into
    run `run_id` under `export/`, merged with what the run holds; returns the merged manifest.

    Sets the `reid.export.<format>` tag of every format in the merged manifest (`export_tags`).
    With `run_export_config` (the run's own `export` config; `reid export`), also logs
    `export/latency_ms` and `export/images_per_sec` when they changed: those of the first of
    its `formats` exported at its `precision` in the merged manifest (decision 3, so another
    format or precision exported later never changes their meaning), at the step of the newest
    value the run holds under those keys, else step 0 (a training run reports them with its
    final epoch instead). Every artifact is checked against its manifest hash before upload.
    """
    folder = Path(folder)
    fresh = read_manifest_file(folder)
    for entry in fresh.exports:
        verify_artifact(entry, folder / entry.artifact)
    client = MlflowClient(tracking_uri=tracking_uri)
    old = logged_manifest(tracking_uri, run_id)
    merged = fresh if old is None else old.merged(fresh)
    artifacts = [folder / entry.artifact for entry in fresh.exports]
    upload_files(tracking_uri, run_id, artifacts, EXPORT_DIR, retry_budget_s=retry_budget_s)
    with tempfile.TemporaryDirectory(prefix="reid-manifest-") as scratch:
        manifest_path = write_manifest_file(merged, Path(scratch))
        upload_files(
            tracking_uri, run_id, [manifest_path], EXPORT_DIR, retry_budget_s=retry_budget_s
        )
    set_export_tags(tracking_uri, run_id, export_tags(merged), retry_budget_s=retry_budget_s)
    if run_export_config is not None:
        _log_speed_metrics(client, tracking_uri, run_id, merged, run_export_config)
    logger.info(
        "logged %d export artifacts and %s to MLflow run %s",
        len(fresh.exports),
        EXPORT_MANIFEST,
        run_id,
    )
    return merged


def set_export_tags(
    tracking_uri: str, run_id: str, tags: dict[str, str], *, retry_budget_s: float = 60.0
) -> None:
    """Set the run tags `tags` (e.g. `{export_tag("tensorrt"): "skipped: ..."}`)."""
    if not tags:
        return
    client = MlflowClient(tracking_uri=tracking_uri)
    run_tags = [RunTag(key, value) for key, value in tags.items()]
    _retrying(
        tracking_uri,
        partial(client.log_batch, run_id, tags=run_tags),
        f"tagging run {run_id}",
        budget_s=retry_budget_s,
    )


def _short(digest: str) -> str:
    return f"{digest[:_HASH_CHARS]}…"


def _check_recorded_hash(
    run_id: str, folder: str, entry: ExportManifest, expected_sha256: str | None
) -> None:
    if expected_sha256 is not None and entry.sha256 != expected_sha256:
        raise ReidError(
            f"{folder}/{entry.artifact} of run {run_id} is recorded with SHA-256 "
            f"{_short(entry.sha256)} in its manifest, but the registered version records "
            f"{_short(expected_sha256)}: the files were changed after registration"
        )


def _check_downloaded(
    path: Path, run_id: str, folder: str, entry: ExportManifest, expected_sha256: str | None
) -> None:
    actual = file_sha256(path)
    wanted = {entry.sha256} | ({expected_sha256} if expected_sha256 else set())
    if wanted == {actual}:
        return
    path.unlink()
    registered = f" and the registered version {_short(expected_sha256)}" if expected_sha256 else ""
    raise ReidError(
        f"downloaded {folder}/{entry.artifact} of run {run_id} has SHA-256 {_short(actual)}, "
        f"but its manifest records {_short(entry.sha256)}{registered}; the file was deleted "
        "(corrupt, or replaced after export)"
    )


def _unwritable(out_dir: Path, error: OSError) -> ReidError:
    return ReidError(f"cannot write to {out_dir}: {error.strerror or error}")


def _write_fetched_manifest(entry: ExportManifest, out_dir: Path) -> None:
    """`out_dir/manifest.json` with `entry`, merged into the manifest already there (a fetch of
    another export into the same folder), else just that entry."""
    fetched = ManifestFile(exports=(entry,))
    if (out_dir / MANIFEST_NAME).exists():
        try:
            fetched = read_manifest_file(out_dir).merged(fetched)
        except ExportError as error:
            logger.warning("replacing %s, which cannot be read: %s", out_dir / MANIFEST_NAME, error)
    try:
        write_manifest_file(fetched, out_dir)
    except OSError as error:
        raise _unwritable(out_dir, error) from None


def download_export(
    tracking_uri: str,
    run_id: str,
    format: Format,
    precision: Precision | None,
    out_dir: Path,
    *,
    expected_sha256: str | None = None,
    artifact_dir: str = EXPORT_DIR,
) -> tuple[Path, ExportManifest]:
    """Download run `run_id`'s export of `format` (and `precision`; None: the only one) from
    its artifact folder `artifact_dir` (the run's `export/`, or a registered version's own
    folder) into `out_dir`; returns (artifact, entry).

    The file is hashed before it reaches `out_dir`: it must match the manifest and, when
    given, `expected_sha256` (a registered version's `reid.sha256`), else `ReidError` naming
    the file and the hashes, and nothing is left in `out_dir`. `out_dir/manifest.json` gets the
    entry, merged into a manifest already there (a fresh folder: that one entry). An `out_dir`
    that cannot be written (a file, no permission) is a `ReidError` sentence.
    """
    get_run(run_id, tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    out_dir = Path(out_dir)
    if not _has_manifest(client, tracking_uri, run_id, artifact_dir):
        if artifact_dir != EXPORT_DIR:
            raise ReidError(f"run {run_id} has no {artifact_dir}/{MANIFEST_NAME}")
        raise ReidError(
            f"run {run_id} has no exports ({EXPORT_MANIFEST} is missing); create one with "
            f"`reid export --run {run_id} --format {format}`"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Staged inside out_dir (same file system): the checked file is then moved, not copied.
        scratch = tempfile.TemporaryDirectory(prefix=".reid-fetch-", dir=out_dir)
    except OSError as error:
        raise _unwritable(out_dir, error) from None
    with scratch:
        staging = Path(scratch.name)
        manifest = read_manifest_file(
            _download(client, tracking_uri, run_id, f"{artifact_dir}/{MANIFEST_NAME}", staging)
        )
        entry = manifest.find(format, precision)
        _check_recorded_hash(run_id, artifact_dir, entry, expected_sha256)
        artifact = str(PurePosixPath(artifact_dir) / entry.artifact)
        downloaded = _download(client, tracking_uri, run_id, artifact, staging)
        _check_downloaded(downloaded, run_id, artifact_dir, entry, expected_sha256)
        target = out_dir / entry.artifact
        downloaded.replace(target)
    _write_fetched_manifest(entry, out_dir)
    return target, entry
