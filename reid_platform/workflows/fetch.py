"""`reid fetch RUN_ID | models:/NAME@ALIAS`: one exported artifact and its manifest, verified."""

from pathlib import Path

from reid_platform.errors import ReidError
from reid_platform.export.artifact_names import Format, Precision
from reid_platform.export.manifest import ExportManifest
from reid_platform.tracking.export_runs import download_export
from reid_platform.tracking.registry import MODELS_SCHEME, resolve_model_uri


def fetch_export(
    tracking_uri: str,
    source: str,
    *,
    format: Format,
    precision: Precision | None = None,
    out: Path,
) -> tuple[Path, ExportManifest]:
    """Download the export of `format` named by `source` into `out`; → (artifact, its record).

    source: a run id (then `precision`, or the run's only export of `format`), or a registered
        version `models:/NAME@ALIAS` / `models:/NAME/VERSION` (then the version's own format and
        precision, which `format` and a given `precision` must match, and its recorded SHA-256;
        the files come from the version's own copy, which re-exporting the run never changes).
    `out/manifest.json` gets the fetched record, merged into a manifest already in `out` (a
    fresh folder: just that record). A checksum mismatch raises `ReidError` and leaves no
    artifact file in `out`.
    """
    if not source.startswith(MODELS_SCHEME):
        return download_export(tracking_uri, source, format, precision, Path(out))
    version = resolve_model_uri(source, tracking_uri)
    registered = f"{version.format} {version.precision}"
    if format != version.format or precision not in (None, version.precision):
        raise ReidError(
            f"{source} (version {version.version}) is the {registered} export, not "
            f"{format}{f' {precision}' if precision else ''}"
        )
    return download_export(
        tracking_uri,
        version.run_id,
        version.format,
        version.precision,
        Path(out),
        expected_sha256=version.sha256,
        artifact_dir=version.artifact_dir,
    )
