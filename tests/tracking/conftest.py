"""Real MLflow stores for tracking tests: sqlite files in tmp, and an `mlflow server` subprocess.

Creating an MLflow sqlite database runs every schema migration (seconds), so one database is
migrated per session and each test gets a copy of it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reid_platform.config.loading import load_config
from reid_platform.config.schema import ReidConfig

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"
_SERVER_START_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite database with its schema created."""
    database = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments(max_results=1)
    return database


@pytest.fixture
def sqlite_uri(migrated_database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite store in `tmp_path`; the working directory moves there too, since
    MLflow puts a new experiment's artifacts under ./mlruns."""
    database = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_database, database)
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{database}"


@pytest.fixture(scope="session")
def quickstart_config() -> ReidConfig:
    """The quickstart experiment's config."""
    return load_config(QUICKSTART)


@pytest.fixture(scope="session")
def changed_config() -> ReidConfig:
    """The quickstart config with one setting changed (another config hash)."""
    return load_config(QUICKSTART, ["solver.max_epochs=7"])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MlflowServer:
    """`mlflow server` on 127.0.0.1:`port` over a sqlite database, startable again after a kill."""

    def __init__(self, database: Path, artifacts: Path, port: int, log: Path) -> None:
        self.database, self.artifacts, self.port, self.log = database, artifacts, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", f"sqlite:///{self.database}"),
            *("--artifacts-destination", str(self.artifacts)),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
        ]
        # The server's GenAI job runner spawns a dozen processes that only slow the start down.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("ab") as log:
            # A session of its own, so the uvicorn child dies with it.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + _SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Kill the server and its children at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture(scope="module")
def mlflow_server(
    migrated_database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A running tracking server for the module (stopped at teardown)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(migrated_database, root / "mlflow.db")
    server = MlflowServer(root / "mlflow.db", root / "artifacts", free_port(), root / "server.log")
    server.start()
    yield server
    server.kill()


TINY_EXPORT = [
    "input.size_train=[64,32]",
    "input.size_test=[64,32]",
    "export.throughput_batch=2",
]
"""Quickstart overrides for a model that exports and times in seconds."""


@pytest.fixture(scope="session")
def export_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real export folder of a tiny random-init model (onnx fp32 exported and timed,
    tensorrt recorded as skipped on a machine without it), from `export_model`."""
    import numpy as np
    import torch

    from reid_platform.export.run_export import export_model
    from reid_platform.export.validation_images import ValidationImages
    from reid_platform.export.validation_map import LabeledImages
    from reid_platform.modeling.build import build_model

    config = load_config(QUICKSTART, TINY_EXPORT)
    torch.manual_seed(0)
    model = build_model(config.model, config.input, num_classes=4).eval()
    generator = torch.Generator().manual_seed(0)

    def labeled(pids: list[int], camid: int) -> LabeledImages:
        images = torch.randint(0, 256, (len(pids), 3, 64, 32), generator=generator)
        return LabeledImages(images.to(torch.uint8), np.array(pids), np.full(len(pids), camid))

    images = ValidationImages(
        labeled([0, 1, 2, 3], camid=0), labeled([0, 1, 2, 3, 0, 1, 2, 3], camid=1), "validation"
    )
    folder = tmp_path_factory.mktemp("export")
    export_model(model, config, folder, images=images, formats=["onnx", "tensorrt"])
    return folder
