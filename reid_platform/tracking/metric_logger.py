"""Logging per-epoch metrics into one MLflow run exactly once per (key, step), through outages.

A resumed training run re-runs the epochs after its last checkpoint; their metrics were possibly
logged already before the interruption, so every (key, step) already in the run's history is
skipped, and the run's curves have neither duplicates nor gaps.
"""

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_METRICS_PER_BATCH

from reid_platform.tracking.retry import call_with_retries

T = TypeVar("T")


class MetricLogger:
    """Logs metrics into run `run_id`; built from plain strings so it pickles to a Ray actor.

    The MLflow client and the logged (key, step) pairs are loaded lazily on first use, in the
    process that logs. Points that could not be written within the retry budget wait in the
    logger and are written by its next call. Not thread-safe: one logger per logging thread.
    """

    def __init__(self, tracking_uri: str, run_id: str, *, retry_budget_s: float = 60.0) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.retry_budget_s = retry_budget_s
        self._client: MlflowClient | None = None
        # Keys the run held when first read (None: not read yet), and key -> steps logged.
        self._stored_keys: set[str] | None = None
        self._steps: dict[str, set[int]] = {}
        # Points not written yet (the store was down), oldest first.
        self._pending: list[Metric] = []

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    @property
    def client(self) -> MlflowClient:
        """The MLflow client of this process, created on first use."""
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _call(self, action: Callable[[], T], what: str) -> T:
        return call_with_retries(
            action,
            what=f"{what} of run {self.run_id}",
            tracking_uri=self.tracking_uri,
            budget_s=self.retry_budget_s,
        )

    def _logged_steps(self, key: str) -> set[int]:
        if self._stored_keys is None:
            # One call lists the keys the run has at all; histories are read only for those.
            run = self._call(lambda: self.client.get_run(self.run_id), "reading the metrics")
            self._stored_keys = set(run.data.metrics)
        if key not in self._steps:
            history: list[Metric] = []
            if key in self._stored_keys:
                history = self._call(
                    lambda: self.client.get_metric_history(self.run_id, key),
                    f"reading the history of {key}",
                )
            self._steps[key] = {metric.step for metric in history}
        return self._steps[key]

    def log(self, metrics: Mapping[str, float], *, step: int) -> int:
        """Log `metrics` at `step` except keys already logged at that step.

        Returns how many points were written, including any left waiting by an earlier call.
        Raises `ReidError` when the store stays unreachable past the retry budget; the points
        then wait in this logger and go out with its next `log` or `flush`.
        """
        fresh = {
            key: float(value)
            for key, value in metrics.items()
            if step not in self._logged_steps(key)
        }
        # One timestamp for all attempts: a batch re-sent after a lost reply is then identical,
        # and the store drops exact duplicates instead of doubling the points.
        timestamp_ms = int(time.time() * 1000)
        for key, value in fresh.items():
            self._pending.append(Metric(key, value, timestamp_ms, step))
            self._steps[key].add(step)  # logged or waiting: never queued twice
        return self.flush()

    @property
    def pending(self) -> int:
        """Number of points waiting for the store to come back."""
        return len(self._pending)

    def flush(self) -> int:
        """Write the waiting points; returns how many. `ReidError` as for `log`."""
        written = 0
        while self._pending:
            chunk = self._pending[:MAX_METRICS_PER_BATCH]
            steps = ", ".join(str(step) for step in sorted({metric.step for metric in chunk}))
            self._call(
                partial(self.client.log_batch, self.run_id, metrics=chunk),
                f"logging metrics at step {steps}",
            )
            del self._pending[: len(chunk)]
            written += len(chunk)
        return written
