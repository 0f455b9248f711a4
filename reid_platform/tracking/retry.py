"""Retrying tracking-store calls through short outages, with a bounded total wait.

MLflow's own HTTP client retries a failed request 7 times with exponential backoff (about four
minutes) before raising; inside `call_with_retries` that chain is cut to one short attempt so
this module alone decides how long a call may keep trying, and the caller learns within
`budget_s` seconds, in one sentence, that the store is gone.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from mlflow.exceptions import MlflowException

from reid_platform.errors import ReidError
from reid_platform.tracking.connection import bounded_http_retries, first_line

logger = logging.getLogger(__name__)

T = TypeVar("T")

# HTTP statuses that say "try again later" (MLflow's own transient set).
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_FIRST_DELAY_S = 0.5
_MAX_DELAY_S = 8.0
# One attempt's HTTP timeout: long enough for a busy server, short against the total budget.
ATTEMPT_TIMEOUT_S = 15


def is_transient(error: BaseException) -> bool:
    """Whether `error` may go away by itself (server down or overloaded, network, locked file).

    MLflow wraps a refused connection or a timeout in an `MlflowException` with the
    INTERNAL_ERROR code (HTTP 500), so those count as transient too.
    """
    if isinstance(error, MlflowException):
        return error.get_http_status_code() in _TRANSIENT_STATUSES
    return isinstance(error, requests.exceptions.RequestException | OSError)


def call_with_retries(
    action: Callable[[], T],
    *,
    what: str,
    tracking_uri: str,
    budget_s: float = 60.0,
    attempt_timeout_s: int = ATTEMPT_TIMEOUT_S,
) -> T:
    """`action()`, retried with exponential backoff while it fails transiently.

    what: a phrase naming the operation for messages, e.g. "logging metrics to run 1a2b".
    attempt_timeout_s: MLflow's HTTP timeout for each request of one attempt (raise it for
    uploads of large files). Raises `ReidError` at once for a permanent failure, or once
    `budget_s` seconds have passed.
    """
    deadline = time.monotonic() + budget_s
    delay = _FIRST_DELAY_S
    while True:
        try:
            with bounded_http_retries(max_retries=0, timeout_s=attempt_timeout_s):
                return action()
        except Exception as error:
            if not is_transient(error):
                raise ReidError(f"{what} failed: {first_line(error)}") from error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReidError(
                    f"tracking store {tracking_uri} kept failing for {budget_s:g} s while "
                    f"{what}: {first_line(error)}"
                ) from error
            logger.warning("%s failed (%s); retrying in %.1f s", what, first_line(error), delay)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY_S)
