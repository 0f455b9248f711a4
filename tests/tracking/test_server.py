"""Against a real `mlflow server` (HTTP API, proxied artifacts), with a crash mid-run."""

import logging
import re
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.artifacts import log_final_artifacts
from reid_platform.tracking.connection import check_tracking_store
from reid_platform.tracking.metric_logger import MetricLogger
from reid_platform.tracking.runs import open_training_run

from .conftest import MlflowServer
from .test_artifacts import check_layout, write_final_checkpoint

pytestmark = pytest.mark.slow  # starts and restarts an mlflow server (~10 s each)

EPOCHS = 12
# Generous: a restart takes ~10 s on an idle 2-core machine, more when tests run in parallel.
RETRY_BUDGET_S = 120.0


def epoch_metrics(epoch: int) -> dict[str, float]:
    return {"train/loss": 5.0 - 0.25 * epoch, "eval/mAP": 0.05 * epoch}


def test_open_and_artifacts_over_http(
    mlflow_server: MlflowServer, quickstart_config: ReidConfig, tmp_path: Path
) -> None:
    check_tracking_store(mlflow_server.uri)
    run = open_training_run(
        tracking_uri=mlflow_server.uri, experiment="http", run_name="r", config=quickstart_config
    )
    again = open_training_run(
        tracking_uri=mlflow_server.uri, experiment="http", run_name="r", config=quickstart_config
    )
    assert again.resumed and again.run_id == run.run_id
    checkpoint = write_final_checkpoint(tmp_path / "final")
    log_final_artifacts(mlflow_server.uri, run.run_id, checkpoint)
    check_layout(mlflow_server.uri, run.run_id, checkpoint, tmp_path / "out")


def test_metrics_survive_a_server_restart(
    mlflow_server: MlflowServer, quickstart_config: ReidConfig, caplog: pytest.LogCaptureFixture
) -> None:
    run = open_training_run(
        tracking_uri=mlflow_server.uri,
        experiment="http",
        run_name="crash",
        config=quickstart_config,
    )
    logger = MetricLogger(mlflow_server.uri, run.run_id, retry_budget_s=RETRY_BUDGET_S)
    started, errors, counts = threading.Event(), [], []

    def train() -> None:
        try:
            for epoch in range(EPOCHS):
                counts.append(logger.log(epoch_metrics(epoch), step=epoch))
                if epoch == 2:
                    started.set()
                time.sleep(0.1)
        except Exception as error:  # reported by the main thread
            errors.append(error)
            started.set()

    caplog.set_level(logging.WARNING, logger="reid_platform.tracking.retry")
    worker = threading.Thread(target=train)
    worker.start()
    # A logger whose budget runs out during the outage keeps its points for its next call.
    impatient = MetricLogger(mlflow_server.uri, run.run_id, retry_budget_s=0.5)
    assert impatient.log({"eval/rank1": 0.1}, step=0) == 1
    assert started.wait(timeout=60)
    mlflow_server.kill()
    with pytest.raises(ReidError, match=r"kept failing for 0\.5 s while logging metrics at step 1"):
        impatient.log({"eval/rank1": 0.2}, step=1)
    assert impatient.pending == 1
    mlflow_server.start()
    assert impatient.log({"eval/rank1": 0.3}, step=2) == 2 and impatient.pending == 0
    worker.join(timeout=RETRY_BUDGET_S + 30)
    assert not worker.is_alive() and errors == []
    assert counts == [2] * EPOCHS
    # the training thread itself waited through the outage (steps after the kill were retried)
    retried = [
        re.search(r"at step (\d+) .*retrying", record.getMessage()) for record in caplog.records
    ]
    assert any(match and int(match.group(1)) >= 3 for match in retried)
    client = MlflowClient(mlflow_server.uri)
    for key in ("train/loss", "eval/mAP"):
        steps = sorted(point.step for point in client.get_metric_history(run.run_id, key))
        assert steps == list(range(EPOCHS)), key
    rank1 = client.get_metric_history(run.run_id, "eval/rank1")
    assert sorted((point.step, point.value) for point in rank1) == [(0, 0.1), (1, 0.2), (2, 0.3)]
