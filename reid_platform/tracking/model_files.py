"""A run's model file (`checkpoints/model.pt`) pinned by its SHA-256, and fetched against it.

A distillation run names its teacher by MLflow run id. The driver pins the teacher's file when
it launches the run (`pin_run_model`: download, hash; the hash becomes a run tag), and every
training worker fetches the file itself (`fetch_run_model`) — on a cluster the driver's temp
folder is not theirs — and refuses a file whose hash differs from the pinned one, so a teacher
re-logged between launch and training, or a resumed run whose teacher changed, never teaches
silently with other weights.
"""

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reid_platform.config import ReidConfig
from reid_platform.errors import ReidError
from reid_platform.export.manifest import file_sha256
from reid_platform.tracking.run_artifacts import download_run_model


@dataclass(frozen=True)
class RunModelFile:
    """Run `run_id`'s `checkpoints/model.pt` as it was when pinned: SHA-256 `sha256` (hex)."""

    run_id: str
    sha256: str


def pin_run_model(run_id: str, tracking_uri: str, out: Path) -> tuple[Path, RunModelFile]:
    """Download run `run_id`'s model file into the folder `out` → (local file, its pin).

    An unknown run or a run without a model file raises `ReidError` naming it.
    """
    path = download_run_model(run_id, tracking_uri, out)
    return path, RunModelFile(run_id=run_id, sha256=file_sha256(path))


def fetch_run_model(pinned: RunModelFile, tracking_uri: str, out: Path) -> Path:
    """Download the pinned model file into the folder `out` and check its SHA-256; a
    different file raises `ReidError` and is not left in `out`."""
    Path(out).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reid-model-", dir=out) as staging:
        path = download_run_model(pinned.run_id, tracking_uri, Path(staging))
        found = file_sha256(path)
        if found != pinned.sha256:
            raise ReidError(
                f"the model file of run {pinned.run_id} has SHA-256 {found[:12]}…, not the "
                f"{pinned.sha256[:12]}… it had when this run was launched; it was replaced "
                "since, so start a new run"
            )
        target = Path(out) / f"{pinned.run_id}-{path.name}"
        return path.replace(target)


@dataclass(frozen=True)
class PinnedModels:
    """The model files a distillation config names by run id (`teacher_run_id`,
    `student_init_run_id`), pinned, and the MLflow store (an absolute URI) they come from."""

    tracking_uri: str
    teacher: RunModelFile | None = None
    student_init: RunModelFile | None = None

    def sha256_by_run(self) -> dict[str, str]:
        """{run id: pinned SHA-256} of the pinned files."""
        return {pin.run_id: pin.sha256 for pin in (self.teacher, self.student_init) if pin}


def pin_distillation_models(
    config: ReidConfig,
    tracking_uri: str,
    out: Path,
    *,
    known_sha256: Mapping[str, str] | None = None,
) -> PinnedModels:
    """Pin the run model files `config.distillation` names (downloaded into `out`, unless
    `known_sha256` already holds a run's pin); nothing when distillation is off or names
    local files."""
    distillation = config.distillation
    known = dict(known_sha256 or {})

    def pin(run_id: str | None, folder: str) -> RunModelFile | None:
        if run_id is None:
            return None
        if run_id in known:
            return RunModelFile(run_id, known[run_id])
        return pin_run_model(run_id, tracking_uri, out / folder)[1]

    if not distillation.enabled:
        return PinnedModels(tracking_uri)
    return PinnedModels(
        tracking_uri,
        teacher=pin(distillation.teacher_run_id, "teacher"),
        student_init=pin(distillation.student_init_run_id, "student_init"),
    )
