"""Registering a distillation run's export as the model to ship, and moving its alias.

    registered = register_promotion(uri, run_id, name="reid-model", format="onnx",
                                    lineage={...}, alias="champion", may_take=gate)

The version is the run's export (`registry.register_export`: a content-addressed copy with its
format, precision and SHA-256 tags), tagged with its lineage. Then the alias: `alias` moves to
the new version, unless `may_take(current holder)` says no, in which case the version gets
`challenger`. MLflow keeps no alias history (an alias is one row, overwritten), so the version
that held `alias` before is recorded on the new one (`reid.previous_champion`), and the outcome
itself (`reid.promotion`), written last, marks the promotion done: a relaunch finds the version
by run and SHA-256 and neither registers it twice nor moves an alias a second time.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.export import ExportError
from reid_platform.export.artifact_names import Format
from reid_platform.tracking.export_runs import logged_manifest
from reid_platform.tracking.layout import (
    REGISTERED_MODEL_TAG,
    REGISTERED_VERSION_TAG,
    REGISTRY_PREVIOUS_CHAMPION_TAG,
    REGISTRY_PROMOTION_TAG,
    REGISTRY_SHA256_TAG,
)
from reid_platform.tracking.registry import check_aliases, register_export
from reid_platform.tracking.retry import call_with_retries
from reid_platform.tracking.runs import quoted

CHAMPION = "champion"
CHALLENGER = "challenger"
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


@dataclass(frozen=True)
class RegisteredPromotion:
    """Version `version` of registered model `name`, holding `alias`.

    previous: the version that held `alias` before (None: none did, or the alias went to
    `challenger` and the holder kept it). resumed: found done by an earlier launch.
    """

    name: str
    version: int
    alias: str
    previous: int | None
    resumed: bool


def alias_holder(tracking_uri: str, name: str, alias: str) -> ModelVersion | None:
    """The version of `name` that holds `alias`, or None (no such model or alias)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == _NOT_FOUND:
            return None
        raise
    if alias not in model.aliases:
        return None
    return client.get_model_version_by_alias(name, alias)


def _existing_version(
    client: MlflowClient, name: str, run_id: str, sha256: str
) -> ModelVersion | None:
    try:
        found = client.search_model_versions(f"name = {quoted(name)} and run_id = '{run_id}'")
    except MlflowException as error:
        if error.error_code == _NOT_FOUND:
            return None
        raise
    matching = [v for v in found if (v.tags or {}).get(REGISTRY_SHA256_TAG) == sha256]
    return min(matching, key=lambda v: int(v.version)) if matching else None


def _export_sha256(tracking_uri: str, run_id: str, format: Format) -> str:
    manifest = logged_manifest(tracking_uri, run_id)
    if manifest is None:
        raise ReidError(
            f"run {run_id} has no export to register (its export.formats is empty, or its "
            f"export failed: see its reid.export.{format} tag)"
        )
    try:
        return manifest.find(format).sha256
    except ExportError as error:
        raise ReidError(f"run {run_id}: {error}") from None


def _tag_version(
    client: MlflowClient, tracking_uri: str, name: str, version: int, tags: Mapping[str, str]
) -> None:
    for key, value in tags.items():
        call_with_retries(
            partial(client.set_model_version_tag, name, str(version), key, value),
            what=f"tagging version {version} of {name!r}",
            tracking_uri=tracking_uri,
        )


def _done(version: ModelVersion, name: str) -> RegisteredPromotion:
    tags = version.tags or {}
    previous = tags.get(REGISTRY_PREVIOUS_CHAMPION_TAG)
    return RegisteredPromotion(
        name=name,
        version=int(version.version),
        alias=tags[REGISTRY_PROMOTION_TAG],
        previous=int(previous) if previous else None,
        resumed=True,
    )


def register_promotion(
    tracking_uri: str,
    run_id: str,
    *,
    name: str,
    format: Format,
    lineage: Mapping[str, str],
    description: str | None = None,
    alias: str = CHAMPION,
    may_take: Callable[[ModelVersion], bool] | None = None,
) -> RegisteredPromotion:
    """Register run `run_id`'s export of `format` as a version of `name` with the `lineage`
    tags, then move `alias` to it (see the module docstring); → what was done.

    description: the version's description (the first thing the registry UI shows of it).
    may_take: called with the version holding `alias` (when one does); False gives the new
    version `challenger` instead. Raises `ReidError` for a reserved alias (before anything is
    registered) and for a run without that export.
    """
    check_aliases([alias, CHALLENGER])
    sha256 = _export_sha256(tracking_uri, run_id, format)
    client = MlflowClient(tracking_uri=tracking_uri)
    version = _existing_version(client, name, run_id, sha256)
    if version is not None and REGISTRY_PROMOTION_TAG in (version.tags or {}):
        return _done(version, name)
    number = (
        int(version.version)
        if version is not None
        else register_export(tracking_uri, run_id, name=name, format=format)
    )
    _tag_version(client, tracking_uri, name, number, lineage)
    if description is not None:
        call_with_retries(
            partial(client.update_model_version, name, str(number), description=description),
            what=f"describing version {number} of {name!r}",
            tracking_uri=tracking_uri,
        )
    holder = alias_holder(tracking_uri, name, alias)
    taken = holder is None or may_take is None or may_take(holder)
    granted = alias if taken else CHALLENGER
    previous = int(holder.version) if holder is not None and taken else None
    if previous is not None:
        _tag_version(
            client, tracking_uri, name, number, {REGISTRY_PREVIOUS_CHAMPION_TAG: str(previous)}
        )
    call_with_retries(
        partial(client.set_registered_model_alias, name, granted, str(number)),
        what=f"setting alias {granted!r} on version {number} of {name!r}",
        tracking_uri=tracking_uri,
    )
    _tag_version(client, tracking_uri, name, number, {REGISTRY_PROMOTION_TAG: granted})
    for key, value in ((REGISTERED_MODEL_TAG, name), (REGISTERED_VERSION_TAG, str(number))):
        call_with_retries(
            partial(client.set_tag, run_id, key, value),
            what=f"tagging run {run_id}",
            tracking_uri=tracking_uri,
        )
    return RegisteredPromotion(name, number, granted, previous, resumed=False)
