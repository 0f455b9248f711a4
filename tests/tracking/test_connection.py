"""Tracking URIs are checked before a run starts, failing in seconds with one sentence."""

from pathlib import Path

import pytest

from reid_platform.errors import ReidError
from reid_platform.tracking.connection import check_tracking_store
from reid_platform.tracking.metric_logger import MetricLogger

from .conftest import free_port


def test_unreachable_server_fails_fast() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ReidError, match=f"tracking server {uri} is unreachable"):
        check_tracking_store(uri)


def test_logger_gives_up_on_a_dead_server_after_its_budget() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    logger = MetricLogger(uri, "abc", retry_budget_s=1.0)
    with pytest.raises(ReidError, match=f"tracking store {uri} kept failing for 1 s"):
        logger.log({"train/loss": 1.0}, step=0)


def test_sqlite_store_needs_its_folder(tmp_path: Path) -> None:
    with pytest.raises(ReidError, match=r"tracking store folder .*missing does not exist"):
        check_tracking_store(f"sqlite:///{tmp_path / 'missing' / 'mlflow.db'}")


def test_sqlite_store_is_accepted_unless_not_a_database(
    migrated_database: Path, tmp_path: Path
) -> None:
    database = tmp_path / "mlflow.db"
    database.write_bytes(migrated_database.read_bytes())
    check_tracking_store(f"sqlite:///{database}")
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("not sqlite", encoding="utf-8")
    with pytest.raises(ReidError, match=r"notes\.db cannot be used"):
        check_tracking_store(f"sqlite:///{not_a_database}")


def test_file_store_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in (tmp_path.as_uri(), str(tmp_path / "mlruns")):
        with pytest.raises(ReidError, match=r"is a file store, which MLflow 3\.17 refuses"):
            check_tracking_store(uri)
