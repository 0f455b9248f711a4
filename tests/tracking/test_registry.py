"""Registered model versions made from a run's export, in a real sqlite MLflow registry."""

import dataclasses
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.export.manifest import (
    ManifestFile,
    file_sha256,
    read_manifest_file,
    write_manifest_file,
)
from reid_platform.tracking.export_runs import log_export_folder
from reid_platform.tracking.registry import (
    RegisteredExport,
    check_aliases,
    parse_model_uri,
    register_export,
    resolve_model_uri,
)
from reid_platform.tracking.runs import experiment_id_for
from reid_platform.workflows.fetch import fetch_export


def exported_run(uri: str, folder: Path) -> str:
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id_for(client, "registry")).info.run_id
    log_export_folder(uri, run_id, folder)
    return run_id


def test_a_version_names_the_exported_artifact_and_carries_its_aliases(
    sqlite_uri: str, export_folder: Path
) -> None:
    run_id = exported_run(sqlite_uri, export_folder)
    entry = read_manifest_file(export_folder).find("onnx")
    assert entry.validation_map is not None and entry.parity is not None
    version = register_export(
        sqlite_uri, run_id, name="reid-net", format="onnx", aliases=["champion", "edge"]
    )
    assert version == 1
    client = MlflowClient(sqlite_uri)
    stored = client.get_model_version("reid-net", "1")
    run = client.get_run(run_id)
    assert stored.run_id == run_id
    folder = f"export/versions/{entry.sha256[:12]}"
    assert stored.source == f"{run.info.artifact_uri}/{folder}"
    assert {e.path for e in client.list_artifacts(run_id, folder)} == {
        f"{folder}/model.onnx",
        f"{folder}/manifest.json",
    }
    assert stored.tags == {
        "reid.format": "onnx",
        "reid.precision": "fp32",
        "reid.artifact": "model.onnx",
        "reid.sha256": entry.sha256,
        "reid.validation_mAP": f"{entry.validation_map.exported_map:.6f}",
        "reid.parity_max_abs": f"{entry.parity.max_abs_diff:.3e}",
    }
    assert sorted(stored.aliases) == ["champion", "edge"]
    expected = RegisteredExport(run_id, "onnx", "fp32", entry.sha256, 1, "reid-net", folder)
    assert resolve_model_uri("models:/reid-net@champion", sqlite_uri) == expected
    assert resolve_model_uri("models:/reid-net/1", sqlite_uri) == expected

    # A second version of the same registered model takes the alias over.
    assert register_export(sqlite_uri, run_id, name="reid-net", format="onnx", aliases=["edge"])
    assert resolve_model_uri("models:/reid-net@edge", sqlite_uri).version == 2
    assert resolve_model_uri("models:/reid-net@champion", sqlite_uri).version == 1


def reexported_folder(export_folder: Path, target: Path) -> Path:
    """The export folder with other bytes in model.onnx (a re-export: TensorRT builds, or ONNX
    after an upgrade, differ), its manifest updated to match."""
    shutil.copytree(export_folder, target)
    artifact = target / "model.onnx"
    artifact.write_bytes(artifact.read_bytes() + b"re-export")
    entry = read_manifest_file(target).find("onnx", "fp32")
    changed = dataclasses.replace(entry, sha256=file_sha256(artifact))
    write_manifest_file(ManifestFile(exports=(changed,)), target)
    return target


def test_a_reexport_never_changes_a_registered_version(
    sqlite_uri: str, export_folder: Path, tmp_path: Path
) -> None:
    run_id = exported_run(sqlite_uri, export_folder)
    registered = (export_folder / "model.onnx").read_bytes()
    register_export(sqlite_uri, run_id, name="reid-net", format="onnx", aliases=["prod"])
    new = reexported_folder(export_folder, tmp_path / "again")
    log_export_folder(sqlite_uri, run_id, new)

    artifact, entry = fetch_export(
        sqlite_uri, "models:/reid-net@prod", format="onnx", out=tmp_path / "by_alias"
    )
    assert artifact.read_bytes() == registered and entry.sha256 == file_sha256(artifact)
    artifact, entry = fetch_export(sqlite_uri, run_id, format="onnx", out=tmp_path / "by_run")
    assert artifact.read_bytes() == (new / "model.onnx").read_bytes() != registered
    assert entry.sha256 == file_sha256(artifact)


def test_reserved_and_invalid_aliases_are_refused(sqlite_uri: str) -> None:
    check_aliases(["champion", "edge-2", "v1beta"])
    for alias in ("latest", "LaTeSt", "v1", "V12"):
        with pytest.raises(ReidError, match=f"alias '{alias}' is reserved"):
            check_aliases(["champion", alias])
    with pytest.raises(ReidError, match="alias 'a b' is not valid"):
        check_aliases(["a b"])


def test_unknown_models_aliases_and_versions_are_one_sentence(
    sqlite_uri: str, export_folder: Path
) -> None:
    run_id = exported_run(sqlite_uri, export_folder)
    register_export(sqlite_uri, run_id, name="reid-net", format="onnx", aliases=["champion"])
    cases = {
        "models:/nobody@champion": "registered model 'nobody' is not in the tracking store",
        "models:/reid-net@staging": "has no alias 'staging' \\(its aliases: champion\\)",
        "models:/reid-net/7": "registered model 'reid-net' has no version 7",
        "models:/reid-net": "names no alias or version",
        "runs:/abc/export": "is not a models:/NAME@ALIAS",
    }
    for uri, sentence in cases.items():
        with pytest.raises(ReidError, match=sentence):
            resolve_model_uri(uri, sqlite_uri)
    with pytest.raises(ReidError, match="no tensorrt export"):
        register_export(sqlite_uri, run_id, name="reid-net", format="tensorrt")
    with pytest.raises(ReidError, match="is not in the tracking store"):
        register_export(sqlite_uri, "feedbeef", name="reid-net", format="onnx")


def test_a_version_not_made_from_an_export_is_refused(sqlite_uri: str) -> None:
    client = MlflowClient(sqlite_uri)
    client.create_registered_model("other")
    client.create_model_version("other", "file:///somewhere")
    with pytest.raises(ReidError, match="was not registered from a reid export"):
        resolve_model_uri("models:/other/1", sqlite_uri)


def test_model_uris_parse_into_name_alias_and_version() -> None:
    assert parse_model_uri("models:/a/b@champion") == ("a/b", "champion", None)
    assert parse_model_uri("models:/reid-net/12") == ("reid-net", None, 12)
    for bad in ("models:/", "models:/x/0", "models:/x@", "models:/@a", "x@a"):
        with pytest.raises(ReidError):
            parse_model_uri(bad)
