"""`reid train CONFIG [key=value ...]`: one training run on Ray Train, tracked as one MLflow run."""

import argparse
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from reid_platform import metric_names
from reid_platform.config import ReidConfig, load_config
from reid_platform.data.build import build_data
from reid_platform.errors import ReidError
from reid_platform.training.hooks import TrainingOutcome

if TYPE_CHECKING:
    from reid_platform.tracking.model_files import PinnedModels
    from reid_platform.tracking.runs import RunStatus
    from reid_platform.workflows.teacher_check import TeacherCheck

logger = logging.getLogger(__name__)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "train",
        parents=[common],
        help="train one model on Ray Train (N workers), tracked as one MLflow run",
    )
    command.add_argument("config", help="experiment YAML")
    command.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides")
    command.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join (host:port, auto or ray://host:port; token auth); "
        "default: start a local Ray",
    )
    command.add_argument(
        "--run-name",
        metavar="NAME",
        help="run name (else tracking.run_name, else a new unique name); "
        "an existing name with the same config resumes that run",
    )
    command.set_defaults(handler=train_command)


def new_run_name(experiment: str) -> str:
    """`<experiment>-<UTC yyyymmdd-hhmmss>-<4 hex>`: never the name of an earlier run."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{experiment}-{stamp}-{secrets.token_hex(2)}"


def with_run_name(config: ReidConfig, requested: str | None) -> ReidConfig:
    """The config with its run name resolved: `--run-name`, else `tracking.run_name`, else new.

    The name is written into the config, so the first launch of a generated name and a later
    `--run-name` relaunch carry the same config (and config hash).
    """
    name = requested or config.tracking.run_name or new_run_name(config.tracking.experiment)
    tracking = config.tracking.model_copy(update={"run_name": name})
    return config.model_copy(update={"tracking": tracking})


@dataclass(frozen=True)
class FinishedRun:
    """What the summary table shows: names, the loop's outcome, the command's wall time."""

    run_name: str
    run_id: str
    outcome: TrainingOutcome
    wall_time_s: float


def _format_metric(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.2f}%"


def summary_table(done: FinishedRun, max_epochs: int) -> Table:
    """Run name, MLflow run id, epochs, wall time, final validation and test mAP."""
    outcome = done.outcome
    table = Table(title="training run", title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value")
    epochs = f"{outcome.start_epoch + outcome.epochs_run}/{max_epochs}"
    if outcome.start_epoch > 0:
        epochs += f" (resumed after epoch {outcome.start_epoch})"
    table.add_row("run name", done.run_name)
    table.add_row("MLflow run id", done.run_id)
    table.add_row("epochs", epochs)
    table.add_row("wall time", f"{done.wall_time_s:.0f} s (training {outcome.wall_time_s:.0f} s)")
    validation_map = outcome.validation_metrics.get(metric_names.MAP)
    test_map = outcome.test_metrics.get(metric_names.test_metric(metric_names.MAP))
    table.add_row("validation mAP (final)", _format_metric(validation_map))
    table.add_row("test mAP", _format_metric(test_map))
    if outcome.final_checkpoint_dir is not None:
        table.add_row("final checkpoint", str(outcome.final_checkpoint_dir))
    return table


def _train(
    config: ReidConfig, args: argparse.Namespace, run_id: str, models: "PinnedModels | None"
) -> TrainingOutcome:
    # Ray is imported here: `reid --help` and the other commands stay fast.
    from reid_platform.distributed.training_run import run_tracked_training

    return run_tracked_training(
        config,
        run_id=run_id,
        tracking_uri=args.tracking_uri,
        working_dir=Path.cwd(),
        address=args.address,
        models=models,
    )


def _teacher(config: ReidConfig, args: argparse.Namespace, scratch: Path) -> "TeacherCheck | None":
    """A distillation config's teacher, pinned and checked before any run is opened."""
    if not config.distillation.enabled:
        return None
    from reid_platform.workflows.teacher_check import check_teacher

    return check_teacher(
        config, tracking_uri=args.tracking_uri, working_dir=Path.cwd(), scratch=scratch
    )


def _close(tracking_uri: str, run_id: str, status: "RunStatus") -> None:
    """Mark the MLflow run; when that fails too, say so without hiding the original error."""
    from reid_platform.tracking.runs import finish_run

    try:
        finish_run(tracking_uri, run_id, status)
    except ReidError as error:
        logger.warning("could not mark MLflow run %s %s: %s", run_id, status, error)


def train_command(args: argparse.Namespace) -> int:
    from reid_platform.distributed.trainer import check_device
    from reid_platform.tracking.connection import check_tracking_store
    from reid_platform.tracking.distill_runs import record_teacher
    from reid_platform.tracking.runs import finish_run, open_training_run

    started = time.perf_counter()
    config = with_run_name(load_config(args.config, args.overrides), args.run_name)
    run_name = config.tracking.run_name
    assert run_name is not None
    check_tracking_store(args.tracking_uri)
    check_device(config)
    # Generates the synthetic benchmark on first use and names a missing dataset folder in one
    # sentence here, before any Ray worker starts.
    build_data(config.data)
    with tempfile.TemporaryDirectory(prefix="reid-teacher-") as scratch:
        teacher = _teacher(config, args, Path(scratch))
    tracked = open_training_run(
        tracking_uri=args.tracking_uri,
        experiment=config.tracking.experiment,
        run_name=run_name,
        config=config,
        kind="distill" if teacher is not None else "train",
    )
    verb = "resuming" if tracked.resumed else "starting"
    logger.info("%s run %s (MLflow run %s)", verb, run_name, tracked.run_id)
    try:
        if teacher is not None:
            record_teacher(
                args.tracking_uri,
                tracked.run_id,
                teacher_run_id=config.distillation.teacher_run_id,
                sha256=teacher.sha256,
                search_run_id=None,
                metrics=teacher.metrics,
            )
        outcome = _train(config, args, tracked.run_id, teacher.models if teacher else None)
    except KeyboardInterrupt:
        _close(args.tracking_uri, tracked.run_id, "KILLED")
        logger.info("run %s interrupted: relaunch with --run-name %s to resume", run_name, run_name)
        raise
    except BaseException:
        _close(args.tracking_uri, tracked.run_id, "FAILED")
        raise
    finish_run(args.tracking_uri, tracked.run_id, "FINISHED")
    done = FinishedRun(run_name, tracked.run_id, outcome, time.perf_counter() - started)
    Console().print(summary_table(done, config.solver.max_epochs))
    return 0
