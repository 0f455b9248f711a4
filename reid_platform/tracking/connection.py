"""Checking a tracking URI before a run starts, so a wrong or dead store fails in seconds.

MLflow itself retries an unreachable server for about four minutes and creates an empty sqlite
database wherever a URI points; `check_tracking_store` names the problem in one sentence instead.
"""

import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reid_platform.errors import ReidError

_RETRIES_VAR = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
_TIMEOUT_VAR = "MLFLOW_HTTP_REQUEST_TIMEOUT"
_FILE_STORE_VAR = "MLFLOW_ALLOW_FILE_STORE"
_HEALTH_TIMEOUT_S = 5.0
# MLflow reads its HTTP settings from the environment on every request; the lock keeps two
# threads from restoring each other's values (re-entrant: blocks may nest).
_ENV_LOCK = threading.RLock()


@contextmanager
def bounded_http_retries(*, max_retries: int, timeout_s: int) -> Iterator[None]:
    """MLflow's HTTP retry count and per-request timeout lowered inside the block.

    Other threads' MLflow calls made meanwhile see the same values; nothing else in a
    training process talks to MLflow concurrently.
    """
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in (_RETRIES_VAR, _TIMEOUT_VAR)}
        os.environ[_RETRIES_VAR] = str(max_retries)
        os.environ[_TIMEOUT_VAR] = str(timeout_s)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def first_line(error: BaseException) -> str:
    """The first line of an error's message (MLflow's can span pages), at most 300 characters."""
    text = error.message if isinstance(error, MlflowException) else str(error)
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///...` URI (relative to the working directory), else None."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    try:
        database = make_url(tracking_uri).database
    except ArgumentError:
        raise ReidError(f"tracking URI {tracking_uri} is not a valid sqlite URL") from None
    if not database or database == ":memory:":
        raise ReidError(f"tracking URI {tracking_uri} names no database file")
    return Path(database)


def _check_http_server(tracking_uri: str) -> None:
    url = f"{tracking_uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=_HEALTH_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ReidError(f"tracking server {tracking_uri} is unreachable ({reason})") from None
    if status != 200:
        raise ReidError(f"tracking server {tracking_uri} answered {url} with HTTP {status}")


def _check_file_store(tracking_uri: str) -> None:
    if os.environ.get(_FILE_STORE_VAR, "").lower() not in {"true", "1"}:
        raise ReidError(
            f"tracking URI {tracking_uri} is a file store, which MLflow 3.17 refuses unless "
            f"{_FILE_STORE_VAR}=true; use sqlite:///<folder>/mlflow.db instead"
        )


def _check_api(tracking_uri: str) -> None:
    # A real call through MLflow's client: catches refused hosts (403 from the server's security
    # middleware), authentication, unknown schemes and unreadable databases; on a fresh sqlite
    # file it also creates the tables here, once, before any worker races to do it.
    try:
        with bounded_http_retries(max_retries=0, timeout_s=int(_HEALTH_TIMEOUT_S) * 2):
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
    except Exception as error:
        # Whatever the store layer raises (MLflow, SQLAlchemy, a plugin), the run cannot start.
        raise ReidError(
            f"tracking store {tracking_uri} cannot be used: {first_line(error)}"
        ) from None


def check_tracking_store(tracking_uri: str) -> None:
    """Raise `ReidError` within seconds unless `tracking_uri` can hold runs.

    http(s): the server answers /health and an API call; sqlite: the database's folder exists
    (the file itself is created); file stores: only with MLFLOW_ALLOW_FILE_STORE=true.
    """
    scheme = tracking_uri.split(":", 1)[0].lower() if ":" in tracking_uri else ""
    if scheme in {"http", "https"}:
        _check_http_server(tracking_uri)
    elif scheme == "sqlite":
        path = sqlite_path(tracking_uri)
        if path is not None and not path.parent.is_dir():
            raise ReidError(f"tracking store folder {path.parent} does not exist")
    elif scheme in {"", "file"}:
        _check_file_store(tracking_uri)
    _check_api(tracking_uri)


def absolute_tracking_uri(tracking_uri: str, working_dir: Path) -> str:
    """The tracking URI as other processes must see it: a relative sqlite path made absolute
    against the driver's working directory (Tune runs each trial in its own trial folder, and
    Ray Train controllers in their own working directories)."""
    path = sqlite_path(tracking_uri)
    if path is None or path.is_absolute():
        return tracking_uri
    return f"sqlite:///{(working_dir / path).resolve()}"
