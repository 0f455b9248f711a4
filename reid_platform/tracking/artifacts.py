"""Logging the files of a training run's final checkpoint into its MLflow run (DESIGN.md layout).

checkpoint dir             run artifact
model.pt                -> checkpoints/model.pt
roc/*, ranklist/*       -> same relative paths (evaluation.report_files writes them)
metrics.json            -> metrics/final.json

A checkpoint's `export/` folder is not logged here: `tracking.export_runs.log_export_folder`
merges it into the run's `export/manifest.json` (the Train callback calls both).
"""

import shutil
import tempfile
from functools import partial
from pathlib import Path, PurePosixPath

from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.tracking.layout import (
    FINAL_METRICS,
    MODEL_CHECKPOINT,
    RANK_LIST_DIR,
    ROC_FIGURE,
)
from reid_platform.tracking.retry import call_with_retries

# File names inside a checkpoint directory, as training.loop writes them.
CHECKPOINT_MODEL_FILE = "model.pt"
CHECKPOINT_METRICS_FILE = "metrics.json"
REPORT_DIRS = (str(PurePosixPath(ROC_FIGURE).parent), RANK_LIST_DIR)
# A model file of a few hundred MB goes to a proxied artifact store in one request.
_UPLOAD_TIMEOUT_S = 300


def final_artifact_plan(checkpoint_dir: Path) -> list[tuple[Path, str]]:
    """(local file, artifact path) pairs for the final checkpoint at `checkpoint_dir`.

    The model file is required; report files and metrics.json are logged when present.
    """
    model = checkpoint_dir / CHECKPOINT_MODEL_FILE
    if not model.is_file():
        raise ReidError(f"final checkpoint {checkpoint_dir} holds no {CHECKPOINT_MODEL_FILE}")
    plan = [(model, MODEL_CHECKPOINT)]
    for folder in REPORT_DIRS:
        for path in sorted((checkpoint_dir / folder).rglob("*")):
            if path.is_file():
                plan.append((path, path.relative_to(checkpoint_dir).as_posix()))
    metrics = checkpoint_dir / CHECKPOINT_METRICS_FILE
    if metrics.is_file():
        plan.append((metrics, FINAL_METRICS))
    return plan


def _upload(client: MlflowClient, run_id: str, local: Path, artifact: str, staging: Path) -> None:
    target = PurePosixPath(artifact)
    if local.name != target.name:
        # log_artifact keeps the file name, so a renamed artifact is staged under its new name.
        renamed = staging / target.name
        shutil.copyfile(local, renamed)
        local = renamed
    folder = str(target.parent)
    client.log_artifact(run_id, str(local), artifact_path=None if folder == "." else folder)


def log_final_artifacts(
    tracking_uri: str, run_id: str, checkpoint_dir: Path, *, retry_budget_s: float = 60.0
) -> list[str]:
    """Log the final checkpoint's model, report files and metrics into run `run_id`.

    Returns the artifact paths logged. Logging again overwrites the same paths, so a retried
    final report is harmless.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    plan = final_artifact_plan(Path(checkpoint_dir))
    with tempfile.TemporaryDirectory(prefix="reid-artifacts-") as staging:
        for local, artifact in plan:
            call_with_retries(
                partial(_upload, client, run_id, local, artifact, Path(staging)),
                what=f"logging {artifact} to run {run_id}",
                tracking_uri=tracking_uri,
                budget_s=retry_budget_s,
                attempt_timeout_s=_UPLOAD_TIMEOUT_S,
            )
    return [artifact for _, artifact in plan]
