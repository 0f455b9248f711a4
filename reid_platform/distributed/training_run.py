"""One tracked training run on Ray Train: the MLflow run already open, Ray started or joined,
the `TorchTrainer` fitted with the callback that logs into that run (`reid train`, and the
distillation run of `reid promote`)."""

from pathlib import Path

from reid_platform.config import ReidConfig
from reid_platform.distributed.callbacks import MlflowReportCallback
from reid_platform.distributed.cluster import ray_session
from reid_platform.distributed.trainer import TrainingLaunch, build_trainer, fit
from reid_platform.tracking.connection import absolute_tracking_uri
from reid_platform.tracking.model_files import PinnedModels
from reid_platform.training.hooks import TrainingOutcome


def cpus_needed(config: ReidConfig) -> int:
    """Logical CPUs a local Ray needs for the run's workers."""
    return config.distributed.num_workers * config.distributed.cpus_per_worker


def run_tracked_training(
    config: ReidConfig,
    *,
    run_id: str,
    tracking_uri: str,
    working_dir: Path,
    address: str | None,
    models: PinnedModels | None = None,
) -> TrainingOutcome:
    """Train `config` (its `tracking.run_name` is the Ray Train run: the same name resumes)
    logging into MLflow run `run_id`; → rank 0's outcome.

    address: the Ray cluster to join (None: a local Ray, shut down after). models: the pinned
    model files of a distillation config.
    """
    assert config.tracking.run_name is not None
    launch = TrainingLaunch(run_name=config.tracking.run_name, working_dir=working_dir)
    # The Train controller logs from its own working directory, where a relative sqlite path
    # would open another database.
    absolute_uri = absolute_tracking_uri(tracking_uri, working_dir)
    callback = MlflowReportCallback(tracking_uri=absolute_uri, run_id=run_id)
    with ray_session(address, cpus_needed=cpus_needed(config)):
        return fit(build_trainer(config, launch, callbacks=[callback], models=models))
