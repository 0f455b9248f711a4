"""MetricLogger against a real sqlite store: one point per (key, step), also across loggers."""

import pickle

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.tracking.metric_logger import MetricLogger
from reid_platform.tracking.runs import open_training_run


@pytest.fixture
def run_id(sqlite_uri: str, quickstart_config: ReidConfig) -> str:
    return open_training_run(
        tracking_uri=sqlite_uri, experiment="exp", run_name="metrics", config=quickstart_config
    ).run_id


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    points = MlflowClient(uri).get_metric_history(run_id, key)
    return sorted((point.step, point.value) for point in points)


def epoch_metrics(epoch: int, *, shift: float = 0.0) -> dict[str, float]:
    return {"train/loss": 3.0 - 0.25 * epoch + shift, "train/lr": 1e-4 * (epoch + 1)}


def test_logs_every_key_at_its_step(sqlite_uri: str, run_id: str) -> None:
    logger = MetricLogger(sqlite_uri, run_id)
    assert [logger.log(epoch_metrics(epoch), step=epoch) for epoch in range(3)] == [2, 2, 2]
    assert logger.log({"eval/mAP": 0.5}, step=1) == 1
    assert _history(sqlite_uri, run_id, "train/loss") == [(0, 3.0), (1, 2.75), (2, 2.5)]
    assert _history(sqlite_uri, run_id, "eval/mAP") == [(1, 0.5)]


def test_resumed_logger_skips_logged_steps(sqlite_uri: str, run_id: str) -> None:
    first = MlflowClient(sqlite_uri)
    before = MetricLogger(sqlite_uri, run_id)
    for epoch in range(3):
        before.log(epoch_metrics(epoch), step=epoch)
    before.log({"eval/mAP": 0.4}, step=2)
    # A relaunch resumes from the epoch-1 checkpoint and runs epochs 2..4 again, with new values.
    after = MetricLogger(sqlite_uri, run_id)
    counts = [after.log(epoch_metrics(epoch, shift=1.0), step=epoch) for epoch in range(2, 5)]
    assert counts == [0, 2, 2]
    assert after.log({"eval/mAP": 0.9, "eval/rank1": 0.8}, step=2) == 1
    assert after.log(epoch_metrics(4), step=4) == 0  # the same logger remembers its own points
    assert _history(sqlite_uri, run_id, "train/loss") == [
        (0, 3.0),
        (1, 2.75),
        (2, 2.5),
        (3, 3.25),
        (4, 3.0),
    ]
    assert _history(sqlite_uri, run_id, "eval/mAP") == [(2, 0.4)]
    assert _history(sqlite_uri, run_id, "eval/rank1") == [(2, 0.8)]
    assert first.get_run(run_id).data.metrics["train/loss"] == 3.0


def test_logger_pickles_before_and_after_use(sqlite_uri: str, run_id: str) -> None:
    logger = MetricLogger(sqlite_uri, run_id)
    shipped = pickle.loads(pickle.dumps(logger))
    assert shipped.log(epoch_metrics(0), step=0) == 2
    again = pickle.loads(pickle.dumps(shipped))
    assert again.log(epoch_metrics(0), step=0) == 0
    assert again.log(epoch_metrics(1), step=1) == 2
    assert len(_history(sqlite_uri, run_id, "train/lr")) == 2


def test_unknown_run_is_one_sentence(sqlite_uri: str) -> None:
    logger = MetricLogger(sqlite_uri, "0123456789abcdef0123456789abcdef", retry_budget_s=2)
    with pytest.raises(ReidError, match="reading the metrics of run 0123456789abcdef"):
        logger.log({"train/loss": 1.0}, step=0)
