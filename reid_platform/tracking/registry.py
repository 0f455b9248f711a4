"""Registered model versions made from a run's export (MLflow Model Registry), and back.

A version stands for ONE exported artifact of a run. Registering copies the artifact (checked
against its SHA-256 on the way) and a one-entry manifest to the run's own, content-addressed
`export/versions/<sha256[:12]>/`, and that folder is the version's `source` (MLflow 3.17 accepts
a plain artifact URI there and records it unchanged): a later re-export overwrites
`export/<artifact>` but never a registered version's files. Its `run_id` is the run, and its
tags name the artifact exactly (`reid.format`, `reid.precision`, `reid.artifact`,
`reid.sha256`) plus what was measured at export (`reid.validation_mAP`, `reid.parity_max_abs`).
Fetching a version reads its source folder and checks the manifest and `reid.sha256`.
"""

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast, get_args

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.export.artifact_names import Format, Precision
from reid_platform.export.manifest import MANIFEST_NAME, ExportManifest
from reid_platform.tracking.connection import first_line
from reid_platform.tracking.export_runs import download_export, upload_files
from reid_platform.tracking.layout import (
    EXPORT_VERSIONS_DIR,
    REGISTRY_ARTIFACT_TAG,
    REGISTRY_FORMAT_TAG,
    REGISTRY_PARITY_TAG,
    REGISTRY_PRECISION_TAG,
    REGISTRY_SHA256_TAG,
    REGISTRY_VALIDATION_MAP_TAG,
)
from reid_platform.tracking.retry import call_with_retries
from reid_platform.tracking.run_artifacts import check_store_exists, get_run

MODELS_SCHEME = "models:/"
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_EXISTS = "RESOURCE_ALREADY_EXISTS"
_VERSION = re.compile(r"[1-9][0-9]*")
_RESERVED_VERSION_ALIAS = re.compile(r"[vV][0-9]+")
_HASH_CHARS = 12


@dataclass(frozen=True)
class RegisteredExport:
    """The export a registered model version stands for: run, format, precision, file hash."""

    run_id: str
    format: Format
    precision: Precision
    sha256: str
    version: int
    name: str = ""
    artifact_dir: str = "export"
    """The version's own folder among the run's artifacts (its `source`), e.g.
    `export/versions/<sha256[:12]>`."""


def version_dir(sha256: str) -> str:
    """The run artifact folder holding the registered copy of the artifact hashed `sha256`."""
    return f"{EXPORT_VERSIONS_DIR}/{sha256[:_HASH_CHARS]}"


def check_aliases(aliases: Sequence[str]) -> None:
    """Raise `ReidError` for an alias MLflow refuses: empty, bad characters, too long, or
    reserved (`latest` in any case, `v<digits>` which names a version). Uses MLflow's own
    validators where this MLflow has them, else the two reserved-name rules."""
    from mlflow.utils import validation  # private helpers: their presence is checked

    checks = [
        getattr(validation, name, None)
        for name in ("_validate_model_alias_name", "_validate_model_alias_name_reserved")
    ]
    for alias in aliases:
        if alias.lower() == "latest" or _RESERVED_VERSION_ALIAS.fullmatch(alias):
            raise ReidError(
                f"alias {alias!r} is reserved by MLflow ('latest' and v<number> name versions); "
                "choose another --alias"
            )
        for check in checks:
            if check is None:
                continue
            try:
                check(alias)
            except MlflowException as error:
                raise ReidError(f"alias {alias!r} is not valid: {first_line(error)}") from None


def version_tags(entry: ExportManifest) -> dict[str, str]:
    """The registry tags of a version made from the export `entry` (measured values when
    measured: no validation mAP without a validation split)."""
    tags = {
        REGISTRY_FORMAT_TAG: entry.format,
        REGISTRY_PRECISION_TAG: entry.precision,
        REGISTRY_ARTIFACT_TAG: entry.artifact,
        REGISTRY_SHA256_TAG: entry.sha256,
    }
    if entry.validation_map is not None:
        tags[REGISTRY_VALIDATION_MAP_TAG] = f"{entry.validation_map.exported_map:.6f}"
    if entry.parity is not None:
        tags[REGISTRY_PARITY_TAG] = f"{entry.parity.max_abs_diff:.3e}"
    return tags


def _ensure_registered_model(client: MlflowClient, tracking_uri: str, name: str) -> None:
    def create() -> None:
        try:
            client.get_registered_model(name)
        except MlflowException as error:
            if error.error_code != _NOT_FOUND:
                raise
            try:
                client.create_registered_model(name)
            except MlflowException as race:  # another process created it meanwhile
                if race.error_code != _EXISTS:
                    raise

    call_with_retries(create, what=f"creating registered model {name!r}", tracking_uri=tracking_uri)


def _copy_for_version(
    tracking_uri: str, run_id: str, format: Format, precision: Precision | None
) -> tuple[ExportManifest, str]:
    """Copy the run's export (verified against its manifest while downloading) and a
    one-entry manifest to `version_dir(sha256)`; → (entry, that folder)."""
    with tempfile.TemporaryDirectory(prefix="reid-register-") as scratch:
        artifact, entry = download_export(tracking_uri, run_id, format, precision, Path(scratch))
        folder = version_dir(entry.sha256)
        # The artifact first, the manifest last: a manifest never lists a missing file.
        upload_files(tracking_uri, run_id, [artifact, Path(scratch) / MANIFEST_NAME], folder)
    return entry, folder


def register_export(
    tracking_uri: str,
    run_id: str,
    *,
    name: str,
    format: Format,
    precision: Precision | None = None,
    aliases: Sequence[str] = (),
) -> int:
    """Register run `run_id`'s export of `format` (and `precision`; None: the only one) as a
    new version of the registered model `name` (created when absent), set `aliases` on it,
    and return the version number. The version's source is a copy of the artifact in
    `export/versions/<sha256[:12]>/`, so re-exporting the run never changes it."""
    check_aliases(aliases)
    run = get_run(run_id, tracking_uri)
    entry, folder = _copy_for_version(tracking_uri, run_id, format, precision)
    client = MlflowClient(tracking_uri=tracking_uri)
    _ensure_registered_model(client, tracking_uri, name)
    source = f"{run.info.artifact_uri.rstrip('/')}/{folder}"
    try:
        # Not retried: a lost reply would otherwise create a second version.
        version = client.create_model_version(
            name,
            source,
            run_id=run_id,
            tags=version_tags(entry),
            description=f"{entry.format} {entry.precision} export {entry.artifact} of run {run_id}",
        )
    except MlflowException as error:
        raise ReidError(
            f"registering {entry.artifact} of run {run_id} as {name!r} failed: {first_line(error)}"
        ) from None
    number = int(version.version)
    for alias in aliases:
        call_with_retries(
            partial(client.set_registered_model_alias, name, alias, str(number)),
            what=f"setting alias {alias!r} on version {number} of {name!r}",
            tracking_uri=tracking_uri,
        )
    return number


def parse_model_uri(uri: str) -> tuple[str, str | None, int | None]:
    """`models:/NAME@ALIAS` → (NAME, ALIAS, None); `models:/NAME/VERSION` → (NAME, None, n)."""
    rest = uri.removeprefix(MODELS_SCHEME)
    if rest == uri or not rest:
        raise ReidError(f"{uri!r} is not a models:/NAME@ALIAS or models:/NAME/VERSION URI")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, alias, None
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and _VERSION.fullmatch(version):
            return name, None, int(version)
    raise ReidError(
        f"model URI {uri!r} names no alias or version; use models:/NAME@ALIAS or "
        "models:/NAME/VERSION"
    )


def _find_version(
    client: MlflowClient, tracking_uri: str, name: str, alias: str | None, number: int | None
) -> ModelVersion:
    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == _NOT_FOUND:
            raise ReidError(
                f"registered model {name!r} is not in the tracking store {tracking_uri}"
            ) from None
        raise ReidError(f"reading registered model {name!r} failed: {first_line(error)}") from None
    if alias is not None:
        if alias not in model.aliases:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise ReidError(
                f"registered model {name!r} has no alias {alias!r} (its aliases: {known})"
            )
        return client.get_model_version_by_alias(name, alias)
    try:
        return client.get_model_version(name, str(number))
    except MlflowException as error:
        if error.error_code == _NOT_FOUND:
            raise ReidError(f"registered model {name!r} has no version {number}") from None
        raise


def resolve_model_uri(uri: str, tracking_uri: str) -> RegisteredExport:
    """The export behind `models:/NAME@ALIAS` or `models:/NAME/VERSION`; an unknown model,
    alias or version, or a version not made by `register_export`, is one sentence."""
    name, alias, number = parse_model_uri(uri)
    check_store_exists(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    version = _find_version(client, tracking_uri, name, alias, number)
    tags = version.tags or {}
    missing = [
        tag
        for tag in (REGISTRY_FORMAT_TAG, REGISTRY_PRECISION_TAG, REGISTRY_SHA256_TAG)
        if tag not in tags
    ]
    if missing or not version.run_id:
        raise ReidError(
            f"{uri} (version {version.version}) was not registered from a reid export "
            f"(no {missing[0] if missing else 'run id'})"
        )
    format, precision = tags[REGISTRY_FORMAT_TAG], tags[REGISTRY_PRECISION_TAG]
    if format not in get_args(Format) or precision not in get_args(Precision):
        raise ReidError(f"{uri} has an unknown format or precision tag ({format} {precision})")
    return RegisteredExport(
        run_id=version.run_id,
        format=cast(Format, format),
        precision=cast(Precision, precision),
        sha256=tags[REGISTRY_SHA256_TAG],
        version=int(version.version),
        name=name,
        artifact_dir=_source_folder(uri, version, version.run_id, tracking_uri),
    )


def _source_folder(uri: str, version: ModelVersion, run_id: str, tracking_uri: str) -> str:
    """The version's `source` as a folder among its run's artifacts (one sentence when the
    source lies elsewhere)."""
    root = get_run(run_id, tracking_uri).info.artifact_uri.rstrip("/")
    source = (version.source or "").rstrip("/")
    folder = source.removeprefix(f"{root}/")
    if folder == source or not folder or ".." in folder.split("/"):
        raise ReidError(
            f"{uri} (version {version.version}) has source {source!r}, which is not a folder "
            f"of its run {run_id}'s artifacts"
        )
    return folder
