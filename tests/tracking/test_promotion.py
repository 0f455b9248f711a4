"""Registering a promoted run's export and moving its alias, in a real sqlite MLflow registry:
lineage tags, the displaced champion recorded, the gate's challenger, nothing done twice."""

from pathlib import Path

import pytest
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.export.manifest import read_manifest_file
from reid_platform.tracking.export_runs import log_export_folder
from reid_platform.tracking.promotion import (
    CHALLENGER,
    CHAMPION,
    AliasHolder,
    RegisteredPromotion,
    alias_holder,
    register_promotion,
)
from reid_platform.tracking.runs import experiment_id_for

NAME = "reid-student"
LINEAGE = {"reid.kind": "distill", "reid.teacher_run_id": "t" * 32}


def exported_run(uri: str, folder: Path) -> str:
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id_for(client, "promotion")).info.run_id
    log_export_folder(uri, run_id, folder)
    return run_id


def champion_and_next(uri: str, folder: Path) -> tuple[str, str]:
    """Two exported runs, the first promoted already (version 1, champion)."""
    first, second = exported_run(uri, folder), exported_run(uri, folder)
    register_promotion(uri, first, name=NAME, format="onnx", lineage=LINEAGE)
    return first, second


def versions(uri: str) -> list[ModelVersion]:
    return sorted(
        MlflowClient(uri).search_model_versions(f"name = '{NAME}'"), key=lambda v: int(v.version)
    )


def test_first_promotion_takes_the_alias_with_its_lineage(
    sqlite_uri: str, export_folder: Path
) -> None:
    run_id = exported_run(sqlite_uri, export_folder)
    done = register_promotion(sqlite_uri, run_id, name=NAME, format="onnx", lineage=LINEAGE)
    assert done == RegisteredPromotion(NAME, 1, CHAMPION, None, resumed=False)
    client = MlflowClient(sqlite_uri)
    version = client.get_model_version_by_alias(NAME, CHAMPION)
    sha = read_manifest_file(export_folder).find("onnx").sha256
    assert int(version.version) == 1 and version.run_id == run_id
    assert version.tags["reid.sha256"] == sha
    assert {k: version.tags[k] for k in LINEAGE} == LINEAGE
    assert version.tags["reid.promotion"] == CHAMPION
    assert "reid.previous_champion" not in version.tags
    run_tags = client.get_run(run_id).data.tags
    assert (run_tags["reid.registered_model"], run_tags["reid.registered_version"]) == (NAME, "1")


def test_the_displaced_champion_is_recorded_on_the_new_version(
    sqlite_uri: str, export_folder: Path
) -> None:
    _first, second = champion_and_next(sqlite_uri, export_folder)
    done = register_promotion(sqlite_uri, second, name=NAME, format="onnx", lineage=LINEAGE)
    assert (done.version, done.alias, done.previous) == (2, CHAMPION, 1)
    assert alias_holder(sqlite_uri, NAME, CHAMPION) == AliasHolder(2, second)
    assert (
        MlflowClient(sqlite_uri).get_model_version(NAME, "2").tags["reid.previous_champion"] == "1"
    )
    # MLflow keeps one version per alias: the old champion has none now.
    assert MlflowClient(sqlite_uri).get_model_version(NAME, "1").aliases == []


def test_a_gate_that_refuses_gives_challenger_and_leaves_the_champion(
    sqlite_uri: str, export_folder: Path
) -> None:
    first, second = champion_and_next(sqlite_uri, export_folder)
    asked: list[AliasHolder] = []

    def may_take(holder: AliasHolder) -> bool:
        asked.append(holder)
        assert len(versions(sqlite_uri)) == 1, "asked before the new version is registered"
        return False

    done = register_promotion(
        sqlite_uri, second, name=NAME, format="onnx", lineage=LINEAGE, may_take=may_take
    )
    assert asked == [AliasHolder(1, first)]
    assert (done.version, done.alias, done.previous) == (2, CHALLENGER, None)
    client = MlflowClient(sqlite_uri)
    assert int(client.get_model_version_by_alias(NAME, CHAMPION).version) == 1
    assert int(client.get_model_version_by_alias(NAME, CHALLENGER).version) == 2
    assert "reid.previous_champion" not in client.get_model_version(NAME, "2").tags


def test_a_promotion_is_not_done_twice(sqlite_uri: str, export_folder: Path) -> None:
    first, second = champion_and_next(sqlite_uri, export_folder)
    register_promotion(sqlite_uri, second, name=NAME, format="onnx", lineage=LINEAGE)
    again = register_promotion(sqlite_uri, first, name=NAME, format="onnx", lineage=LINEAGE)
    # Run `first` was promoted already: its version is found, the alias stays where it is.
    assert again == RegisteredPromotion(NAME, 1, CHAMPION, None, resumed=True, holds_alias=False)
    assert again.model_uri == f"models:/{NAME}/1"  # not @champion: that is version 2 now
    assert len(versions(sqlite_uri)) == 2
    assert MlflowClient(sqlite_uri).get_model_version_by_alias(NAME, CHAMPION).run_id == second


def test_a_version_registered_before_a_crash_is_completed_not_duplicated(
    sqlite_uri: str, export_folder: Path
) -> None:
    from reid_platform.tracking.registry import register_export

    run_id = exported_run(sqlite_uri, export_folder)
    # The launch died right after creating the version: no lineage, no alias yet.
    register_export(sqlite_uri, run_id, name=NAME, format="onnx")
    done = register_promotion(sqlite_uri, run_id, name=NAME, format="onnx", lineage=LINEAGE)
    assert (done.version, done.alias, done.resumed) == (1, CHAMPION, False)
    assert len(versions(sqlite_uri)) == 1
    assert versions(sqlite_uri)[0].tags["reid.promotion"] == CHAMPION


@pytest.mark.parametrize("alias", ["latest", "v3", "V12"])
def test_a_reserved_alias_is_refused_before_anything_is_registered(
    sqlite_uri: str, export_folder: Path, alias: str
) -> None:
    run_id = exported_run(sqlite_uri, export_folder)
    with pytest.raises(ReidError, match="reserved"):
        register_promotion(
            sqlite_uri, run_id, name=NAME, format="onnx", lineage=LINEAGE, alias=alias
        )
    assert MlflowClient(sqlite_uri).search_registered_models() == []


def test_a_run_without_the_export_is_refused(sqlite_uri: str) -> None:
    client = MlflowClient(sqlite_uri)
    run_id = client.create_run(experiment_id_for(client, "promotion")).info.run_id
    with pytest.raises(ReidError, match=f"run {run_id} has no export to register"):
        register_promotion(sqlite_uri, run_id, name=NAME, format="onnx", lineage=LINEAGE)
    assert client.search_registered_models() == []


def test_a_gate_that_lets_the_student_take_records_the_displaced_version(
    sqlite_uri: str, export_folder: Path
) -> None:
    _first, second = champion_and_next(sqlite_uri, export_folder)
    done = register_promotion(
        sqlite_uri, second, name=NAME, format="onnx", lineage=LINEAGE, may_take=lambda h: True
    )
    assert (done.version, done.alias, done.previous) == (2, CHAMPION, 1)
    assert done.model_uri == f"models:/{NAME}@champion"


def test_a_failing_gate_registers_nothing(sqlite_uri: str, export_folder: Path) -> None:
    _first, second = champion_and_next(sqlite_uri, export_folder)

    def broken(holder: AliasHolder) -> bool:
        raise ReidError("the holder's model cannot be evaluated")

    with pytest.raises(ReidError, match="cannot be evaluated"):
        register_promotion(
            sqlite_uri, second, name=NAME, format="onnx", lineage=LINEAGE, may_take=broken
        )
    assert len(versions(sqlite_uri)) == 1


def test_a_launch_cut_short_after_moving_the_alias_is_completed_as_it_was(
    sqlite_uri: str, export_folder: Path
) -> None:
    from reid_platform.tracking.registry import register_export

    _first, second = champion_and_next(sqlite_uri, export_folder)
    # The cut launch registered version 2, recorded version 1 as displaced and moved the
    # alias, then died before writing its outcome.
    register_export(sqlite_uri, second, name=NAME, format="onnx")
    client = MlflowClient(sqlite_uri)
    client.set_model_version_tag(NAME, "2", "reid.previous_champion", "1")
    client.set_registered_model_alias(NAME, CHAMPION, "2")
    refusing = []
    done = register_promotion(
        sqlite_uri,
        second,
        name=NAME,
        format="onnx",
        lineage=LINEAGE,
        may_take=lambda holder: refusing.append(holder) or False,
    )
    assert refusing == [], "the version is not gated against itself"
    assert (done.version, done.alias, done.previous) == (2, CHAMPION, 1)
    assert client.get_model_version(NAME, "2").tags["reid.previous_champion"] == "1"
    assert len(versions(sqlite_uri)) == 2
