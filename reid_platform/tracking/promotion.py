"""Registering a distillation run's export as the model to ship, and moving its alias.

    registered = register_promotion(uri, run_id, name="reid-model", format="onnx",
                                    lineage={...}, alias="champion", may_take=gate)

The version is the run's export (`registry.register_export`: a content-addressed copy with its
format, precision and SHA-256 tags), tagged with its lineage. Then the alias: `alias` moves to
the new version, unless `may_take(current holder)` says no, in which case the version gets
`challenger`. The gate is asked before anything is registered, so a gate that fails leaves
nothing behind. MLflow keeps no alias history (an alias is one row, overwritten), so the version
that held `alias` before is recorded on the new one (`reid.previous_champion`), and the outcome
itself (`reid.promotion`), written last, marks the promotion done: a relaunch finds the version
by run and SHA-256 and neither registers it twice nor moves an alias a second time (a launch cut
short after moving the alias finds the alias on its own version and completes the rest).
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
class AliasHolder:
    """The version of a registered model that holds an alias, and the run it came from."""

    version: int
    run_id: str | None


@dataclass(frozen=True)
class RegisteredPromotion:
    """Version `version` of registered model `name`, given `alias`.

    previous: the version that held `alias` before (None: none did, or the alias went to
    `challenger` and the holder kept it). resumed: found done by an earlier launch.
    holds_alias: whether the version still holds `alias` now (a later promotion may have
    moved it on since an earlier launch did this one).
    """

    name: str
    version: int
    alias: str
    previous: int | None
    resumed: bool
    holds_alias: bool = True

    @property
    def model_uri(self) -> str:
        """`models:/NAME@ALIAS` while the version holds its alias, else `models:/NAME/N`."""
        if self.holds_alias:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version}"


def _read(
    tracking_uri: str, what: str, action: Callable[[], ModelVersion | None]
) -> ModelVersion | None:
    """`action()` with retries; a missing model or version is None, other failures one
    sentence (`ReidError`)."""

    def absent_as_none() -> ModelVersion | None:
        try:
            return action()
        except MlflowException as error:
            if error.error_code == _NOT_FOUND:
                return None
            raise

    return call_with_retries(absent_as_none, what=what, tracking_uri=tracking_uri)


def alias_holder(tracking_uri: str, name: str, alias: str) -> AliasHolder | None:
    """The version of `name` that holds `alias`, or None (no such model or alias)."""
    client = MlflowClient(tracking_uri=tracking_uri)

    def holder() -> ModelVersion | None:
        if alias not in client.get_registered_model(name).aliases:
            return None
        return client.get_model_version_by_alias(name, alias)

    found = _read(tracking_uri, f"reading alias {alias!r} of {name!r}", holder)
    return AliasHolder(int(found.version), found.run_id or None) if found is not None else None


def _existing_version(
    tracking_uri: str, name: str, run_id: str, sha256: str
) -> ModelVersion | None:
    """The version of `name` an earlier launch made from this export of run `run_id`."""
    client = MlflowClient(tracking_uri=tracking_uri)

    def oldest() -> ModelVersion | None:
        found = client.search_model_versions(f"name = {quoted(name)} and run_id = '{run_id}'")
        matching = [v for v in found if (v.tags or {}).get(REGISTRY_SHA256_TAG) == sha256]
        return min(matching, key=lambda v: int(v.version)) if matching else None

    return _read(tracking_uri, f"searching the versions of {name!r}", oldest)


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


def _tag_version(tracking_uri: str, name: str, version: int, tags: Mapping[str, str]) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    for key, value in tags.items():
        call_with_retries(
            partial(client.set_model_version_tag, name, str(version), key, value),
            what=f"tagging version {version} of {name!r}",
            tracking_uri=tracking_uri,
        )


def _done(tracking_uri: str, version: ModelVersion, name: str) -> RegisteredPromotion:
    tags = version.tags or {}
    previous, alias = tags.get(REGISTRY_PREVIOUS_CHAMPION_TAG), tags[REGISTRY_PROMOTION_TAG]
    holder = alias_holder(tracking_uri, name, alias)
    return RegisteredPromotion(
        name=name,
        version=int(version.version),
        alias=alias,
        previous=int(previous) if previous else None,
        resumed=True,
        holds_alias=holder is not None and holder.version == int(version.version),
    )


def _decide(
    holder: AliasHolder | None,
    existing: ModelVersion | None,
    may_take: Callable[[AliasHolder], bool] | None,
) -> tuple[bool, int | None]:
    """(whether the version takes the alias, the version it displaces)."""
    if existing is not None and holder is not None and holder.version == int(existing.version):
        # An earlier launch moved the alias already and was cut short: keep what it recorded.
        recorded = (existing.tags or {}).get(REGISTRY_PREVIOUS_CHAMPION_TAG)
        return True, int(recorded) if recorded else None
    if holder is None:
        return True, None
    taken = may_take is None or may_take(holder)
    return taken, holder.version if taken else None


def _set_alias(tracking_uri: str, name: str, alias: str, version: int) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    call_with_retries(
        partial(client.set_registered_model_alias, name, alias, str(version)),
        what=f"setting alias {alias!r} on version {version} of {name!r}",
        tracking_uri=tracking_uri,
    )


def _describe(tracking_uri: str, name: str, version: int, description: str) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    call_with_retries(
        partial(client.update_model_version, name, str(version), description=description),
        what=f"describing version {version} of {name!r}",
        tracking_uri=tracking_uri,
    )


def _tag_run(tracking_uri: str, run_id: str, name: str, version: int) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    for key, value in ((REGISTERED_MODEL_TAG, name), (REGISTERED_VERSION_TAG, str(version))):
        call_with_retries(
            partial(client.set_tag, run_id, key, value),
            what=f"tagging run {run_id}",
            tracking_uri=tracking_uri,
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
    may_take: Callable[[AliasHolder], bool] | None = None,
) -> RegisteredPromotion:
    """Register run `run_id`'s export of `format` as a version of `name` with the `lineage`
    tags, then move `alias` to it (see the module docstring); → what was done.

    description: the version's description (the first thing the registry UI shows of it).
    may_take: asked, before anything is registered, whether the new version may take `alias`
    from its holder (when one holds it); False gives it `challenger` instead. Raises
    `ReidError` for a reserved alias and a run without that export (nothing registered).
    """
    check_aliases([alias, CHALLENGER])
    sha256 = _export_sha256(tracking_uri, run_id, format)
    existing = _existing_version(tracking_uri, name, run_id, sha256)
    if existing is not None and REGISTRY_PROMOTION_TAG in (existing.tags or {}):
        return _done(tracking_uri, existing, name)
    taken, previous = _decide(alias_holder(tracking_uri, name, alias), existing, may_take)
    number = (
        int(existing.version)
        if existing is not None
        else register_export(tracking_uri, run_id, name=name, format=format)
    )
    _tag_version(tracking_uri, name, number, lineage)
    if description is not None:
        _describe(tracking_uri, name, number, description)
    if previous is not None:
        _tag_version(tracking_uri, name, number, {REGISTRY_PREVIOUS_CHAMPION_TAG: str(previous)})
    granted = alias if taken else CHALLENGER
    _set_alias(tracking_uri, name, granted, number)
    _tag_run(tracking_uri, run_id, name, number)
    _tag_version(tracking_uri, name, number, {REGISTRY_PROMOTION_TAG: granted})  # done
    return RegisteredPromotion(name, number, granted, previous, resumed=False)
