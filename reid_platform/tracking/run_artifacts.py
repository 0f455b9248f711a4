"""Fetch a run's artifacts from an MLflow tracking store, with one-sentence errors."""

import json
import tempfile
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.tracking.connection import sqlite_path
from reid_platform.tracking.layout import FINAL_METRICS, MODEL_CHECKPOINT
from reid_platform.tracking.retry import call_with_retries


def check_store_exists(tracking_uri: str) -> None:
    """Raise `ReidError` when a sqlite `tracking_uri` names a database file that does not exist."""
    # MLflow creates an empty sqlite store on first contact; reading from a typo'd path would
    # then report "run not found" in a fresh, wrong database instead of naming the real problem.
    path = sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        raise ReidError(f"tracking store {tracking_uri} does not exist (no file {path})")


def get_run(run_id: str, tracking_uri: str) -> Run:
    """The run `run_id` in the store at `tracking_uri`; an unknown id raises `ReidError`."""
    check_store_exists(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            raise ReidError(f"run {run_id!r} is not in the tracking store {tracking_uri}") from None
        raise ReidError(f"tracking store {tracking_uri} cannot be read: {error.message}") from None


def download_run_artifact(run_id: str, artifact_path: str, tracking_uri: str, out: Path) -> Path:
    """Download `artifact_path` of run `run_id` into the folder `out`; returns the local path."""
    get_run(run_id, tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = str(Path(artifact_path).parent) if "/" in artifact_path else None
    names = {entry.path for entry in client.list_artifacts(run_id, parent)}
    if artifact_path not in names:
        raise ReidError(f"run {run_id!r} has no artifact {artifact_path}")
    out.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, artifact_path, str(out)))


def download_run_model(run_id: str, tracking_uri: str, out: Path) -> Path:
    """The run's trained model file (`checkpoints/model.pt`), downloaded into `out`."""
    return download_run_artifact(run_id, MODEL_CHECKPOINT, tracking_uri, out)


def final_run_metrics(run: Run, tracking_uri: str) -> dict[str, float]:
    """The metrics a finished training run ended with: its `metrics/final.json` (the final
    validation and test metrics, as the final checkpoint recorded them) over the latest value
    of every logged metric (`run.data.metrics`)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    run_id, parent = run.info.run_id, str(Path(FINAL_METRICS).parent)

    def saved() -> dict[str, float | None]:
        if FINAL_METRICS not in {e.path for e in client.list_artifacts(run_id, parent)}:
            return {}
        with tempfile.TemporaryDirectory(prefix="reid-metrics-") as folder:
            text = Path(client.download_artifacts(run_id, FINAL_METRICS, folder)).read_text()
        values: dict[str, float | None] = json.loads(text)
        return values

    final = call_with_retries(
        saved, what=f"reading {FINAL_METRICS} of run {run_id}", tracking_uri=tracking_uri
    )
    metrics = dict(run.data.metrics)
    metrics.update({k: float("nan") if v is None else float(v) for k, v in final.items()})
    return metrics
