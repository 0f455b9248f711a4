"""The Train controller's side of tracking: rank-0 metrics and final files into the MLflow run.

A `ray.train.UserCallback` runs in the Train controller actor (pickled there from the driver),
once per `ray.train.report` round, after every rank has reported. Metrics therefore are logged
from one place, never per worker; `MetricLogger` skips (key, step) pairs the run already holds,
so the epochs a retried or resumed run repeats after its last checkpoint add no duplicates.
"""

import logging
from pathlib import Path
from typing import Any

import ray.train

from reid_platform.distributed.worker import EPOCH_KEY, FINAL_KEY, RESERVED_KEYS
from reid_platform.errors import ReidError
from reid_platform.export.manifest import MANIFEST_NAME
from reid_platform.tracking.artifacts import log_final_artifacts
from reid_platform.tracking.export_runs import log_export_folder
from reid_platform.tracking.layout import EXPORT_DIR, EXPORT_LOG_ERROR_TAG
from reid_platform.tracking.metric_logger import MetricLogger
from reid_platform.tracking.retry import call_with_retries

logger = logging.getLogger(__name__)

ERROR_TAG = "reid.last_worker_error"
_TAG_LIMIT = 5000


def epoch_metrics(reported: dict[str, Any]) -> tuple[int, bool, dict[str, float]]:
    """Rank 0's report → (epoch, final, metrics to log), bookkeeping keys removed."""
    metrics = {key: float(value) for key, value in reported.items() if key not in RESERVED_KEYS}
    return int(reported[EPOCH_KEY]), bool(reported.get(FINAL_KEY, False)), metrics


class MlflowReportCallback(ray.train.UserCallback):
    """Logs each report's rank-0 metrics at step = epoch; the final report's checkpoint files
    (model, ROC, rank lists, metrics) as artifacts, then its `export/` folder (merged into the
    run's `export/manifest.json`, one `reid.export.<format>` tag per format); worker failures
    as a run tag.

    Holds only strings until it runs on the controller (the MLflow client is made there).
    A tracking store that stays down past the retry budget fails the run (`ReidError`): its
    checkpoints are kept, and relaunching the same run name resumes and fills in the metrics.
    """

    def __init__(self, *, tracking_uri: str, run_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.metric_logger = MetricLogger(tracking_uri, run_id)

    def after_report(
        self,
        run_context: Any,
        metrics: list[dict[str, Any]],
        checkpoint: ray.train.Checkpoint | None,
    ) -> None:
        epoch, final, values = epoch_metrics(metrics[0])
        self.metric_logger.log(values, step=epoch)
        if final and checkpoint is not None:
            with checkpoint.as_directory() as folder:
                logged = log_final_artifacts(self.tracking_uri, self.run_id, Path(folder))
                logger.info("logged %d final artifacts to MLflow run %s", len(logged), self.run_id)
                self._log_exports(Path(folder) / EXPORT_DIR)

    def _log_exports(self, export_dir: Path) -> None:
        """Log the final checkpoint's export folder, when training exported; a failure here
        only tags the run (its checkpoint is logged already, and the export can be redone with
        `reid export --run`)."""
        if not (export_dir / MANIFEST_NAME).is_file():
            return
        try:
            log_export_folder(self.tracking_uri, self.run_id, export_dir)
        except Exception as error:  # any failure: the run itself has succeeded
            reason = str(error).strip() or type(error).__name__
            logger.warning(
                "logging the exports of MLflow run %s failed: %s",
                self.run_id,
                reason,
                exc_info=not isinstance(error, ReidError),
            )
            self._tag(EXPORT_LOG_ERROR_TAG, reason)

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
        text = "; ".join(
            f"rank {rank}: {type(error).__name__}: {str(error).strip()[-400:]}"
            for rank, error in sorted(worker_exceptions.items())
        )
        self._tag(ERROR_TAG, text)

    def _tag(self, key: str, text: str) -> None:
        client = self.metric_logger.client
        try:
            call_with_retries(
                lambda: client.set_tag(self.run_id, key, text[:_TAG_LIMIT]),
                what=f"tagging run {self.run_id}",
                tracking_uri=self.tracking_uri,
                budget_s=10.0,
            )
        except ReidError as error:
            # What is being reported matters more; Ray and the log have it either way.
            logger.warning("%s", error)
