"""Fetching a run's model file from a real MLflow sqlite store."""

from pathlib import Path

import mlflow
import pytest

from reid_platform.errors import ReidError
from reid_platform.tracking.layout import MODEL_CHECKPOINT
from reid_platform.tracking.run_artifacts import download_run_model, get_run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A sqlite store with one run holding checkpoints/model.pt and one run without it."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("eval", artifact_location=(root / "artifacts").as_uri())
    with_model = client.create_run(experiment).info.run_id
    payload = root / "model.pt"
    payload.write_bytes(b"weights")
    client.log_artifact(with_model, str(payload), artifact_path=str(Path(MODEL_CHECKPOINT).parent))
    without_model = client.create_run(experiment).info.run_id
    return uri, with_model, without_model


def test_downloads_the_model_file(store: tuple[str, str, str], tmp_path: Path) -> None:
    uri, run_id, _ = store
    path = download_run_model(run_id, uri, tmp_path / "out")
    assert path.name == "model.pt" and path.read_bytes() == b"weights"


def test_unknown_run_id_is_named(store: tuple[str, str, str]) -> None:
    uri, _, _ = store
    with pytest.raises(ReidError, match="run '0123abcd' is not in the tracking store"):
        get_run("0123abcd", uri)


def test_run_without_model_is_named(store: tuple[str, str, str], tmp_path: Path) -> None:
    uri, _, run_id = store
    with pytest.raises(ReidError, match=f"run '{run_id}' has no artifact checkpoints/model.pt"):
        download_run_model(run_id, uri, tmp_path)


def test_missing_sqlite_store_is_not_created(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'typo.db'}"
    with pytest.raises(ReidError, match="does not exist"):
        get_run("abc", uri)
    assert not (tmp_path / "typo.db").exists()
