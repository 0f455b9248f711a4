"""`reid search CONFIG --space SPACE`: Ray Tune + Optuna over a search space, tracked in MLflow.

Everything that can be refused is refused before Ray starts: the config, the space checked
against it, the tracking store and the dataset.
"""

import argparse
import logging
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from reid_platform.cli.table_output import print_table
from reid_platform.cli.train_command import new_run_name
from reid_platform.config import ReidConfig, load_config
from reid_platform.errors import ReidError

if TYPE_CHECKING:
    from reid_platform.distributed.search import SearchOutcome
    from reid_platform.distributed.search_callbacks import TrialProgress

logger = logging.getLogger(__name__)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return value


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "search",
        parents=[common],
        help="search architectures and losses with Ray Tune + Optuna (one MLflow run per trial)",
    )
    command.add_argument("config", help="experiment YAML (the base of every trial)")
    command.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides of the base config (e.g. distillation.teacher_run_id=RUN_ID)",
    )
    command.add_argument("--space", required=True, metavar="SPACE", help="search-space YAML")
    command.add_argument(
        "--num-samples", type=_positive, metavar="N", help="trials to run (default: the space's)"
    )
    command.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join (host:port, auto or ray://host:port; token auth); "
        "default: start a local Ray",
    )
    command.add_argument(
        "--name",
        metavar="NAME",
        help="search name (Tune experiment and MLflow parent run); default: a new unique name",
    )
    command.add_argument(
        "--resume", action="store_true", help="continue the interrupted search named by --name"
    )
    command.set_defaults(handler=search_command)


def new_search_name(experiment: str) -> str:
    """`<experiment>-search-<UTC yyyymmdd-hhmmss>-<4 hex>`."""
    return new_run_name(f"{experiment}-search")


def resume_command(args: argparse.Namespace, name: str) -> str:
    """The exact command that continues this search."""
    argv = ["reid", "search", args.config, *args.overrides]
    argv += ["--space", args.space, "--name", name, "--resume"]
    argv += ["--tracking-uri", args.tracking_uri]
    if args.address:
        argv += ["--address", args.address]
    return shlex.join(argv)


def short_key(path: str) -> str:
    """`model.pooling.kind` → `pooling.kind` (the section is clear from the rest)."""
    return path.split(".", 1)[-1]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_metric(metric: str, value: float | None) -> str:
    """eval/* as a percentage, other metrics (size, latency) as numbers."""
    if value is None:
        return "—"
    return f"{100.0 * value:.2f}%" if metric.startswith("eval/") else f"{value:.6g}"


def _params_text(params: dict[str, Any]) -> str:
    """One `key=value` per line: tables stay readable in a narrow terminal."""
    return "\n".join(f"{short_key(key)}={format_value(value)}" for key, value in params.items())


def _add_columns(table: Table, columns: Sequence[str]) -> None:
    # Nothing is cut with an ellipsis (ids are copied from here): in a narrow terminal, long
    # cells fold onto further lines, and the params keep room for `key=value`.
    for column in columns:
        table.add_column(column, overflow="fold", min_width=20 if column == "params" else None)


@dataclass(frozen=True)
class ProgressTable:
    """The live trials table, printed to stderr (pickled with the Tune experiment: plain data)."""

    objective: str

    def __call__(self, rows: Sequence["TrialProgress"]) -> None:
        table = Table(title="search trials", title_justify="left", box=box.SIMPLE_HEAD)
        _add_columns(table, ("trial", "state", "epochs", self.objective, "params"))
        for row in rows:
            table.add_row(
                row.trial_id,
                row.state,
                "—" if row.epochs_done is None else str(row.epochs_done),
                format_metric(self.objective, row.objective),
                _params_text(row.params),
            )
        print_table(table, stderr=True)


def ranking_table(outcome: "SearchOutcome", objectives: Sequence[str]) -> Table:
    """Rank, trial, MLflow run id, how it ended, objective value(s), sampled params."""
    title = f"search {outcome.search_name} — MLflow run {outcome.parent_run_id}"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    # The objective before the params: a narrow terminal squeezes the last column.
    _add_columns(table, ("rank", "trial", "run id", "status", *objectives, "params"))
    for rank, row in enumerate(outcome.ranking, start=1):
        values = [format_metric(metric, row.metrics.get(metric)) for metric in objectives]
        status = (row.trial_status or row.status.lower()).replace("_", " ")
        table.add_row(
            str(rank), row.trial_id, row.run_id, status, *values, _params_text(row.params)
        )
    return table


def _checked_inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The base config and the space, both validated (and the space against the config)."""
    from reid_platform.config.search import load_search_space
    from reid_platform.config.search_check import check_search_space

    if args.resume and not args.name:
        raise ReidError("--resume needs --name, the name of the search to continue")
    if args.resume and args.num_samples is not None:
        raise ReidError("--num-samples cannot change a search being resumed")
    base = load_config(args.config, args.overrides)
    space = load_search_space(args.space)
    if args.num_samples is not None:
        space = space.model_copy(update={"num_samples": args.num_samples})
    check_search_space(space, base)
    if space.optuna_storage:
        from reid_platform.distributed.search_space import open_optuna_storage

        open_optuna_storage(space.optuna_storage)
    return base, space


def _pinned_teacher(reference: ReidConfig, args: argparse.Namespace) -> dict[str, str]:
    """A distillation search's teacher, checked once before any trial (as `reid train` checks
    it); → {run id: pinned SHA-256} of the model files its trials fetch."""
    if not reference.distillation.enabled:
        return {}
    from reid_platform.workflows.teacher_check import check_teacher

    with tempfile.TemporaryDirectory(prefix="reid-teacher-") as scratch:
        check = check_teacher(
            reference, tracking_uri=args.tracking_uri, working_dir=Path.cwd(), scratch=Path(scratch)
        )
    return check.models.sha256_by_run()


def _say_how_to_resume(args: argparse.Namespace, name: str) -> None:
    # Printed whole (no log wrapping), so that it can be copied.
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"search {name} was interrupted; resume it with:", highlight=False)
    console.print(resume_command(args, name), highlight=False, markup=False)


def search_command(args: argparse.Namespace) -> int:
    from reid_platform.data.build import build_data
    from reid_platform.distributed.search import SearchLaunch, run_search
    from reid_platform.distributed.search_space import trial_config
    from reid_platform.distributed.trainer import check_device
    from reid_platform.tracking.connection import check_tracking_store

    base, space = _checked_inputs(args)
    reference = trial_config(base, space, {})
    check_device(reference)
    check_tracking_store(args.tracking_uri)
    # Generates the synthetic benchmark on first use, and names a missing dataset folder here,
    # before any trial starts.
    build_data(reference.data)
    model_sha256 = _pinned_teacher(reference, args)
    name = args.name or new_search_name(base.tracking.experiment)
    objectives = [objective.metric for objective in space.objectives]
    launch = SearchLaunch(
        search_name=name,
        working_dir=Path.cwd(),
        tracking_uri=args.tracking_uri,
        resume=args.resume,
        address=args.address,
        config_path=args.config,
        space_path=args.space,
        progress=ProgressTable(objective=objectives[0]),
        model_sha256=model_sha256,
    )
    try:
        outcome = run_search(base, space, launch)
    except KeyboardInterrupt:
        _say_how_to_resume(args, name)
        raise
    print_table(ranking_table(outcome, objectives))
    if outcome.interrupted:
        _say_how_to_resume(args, name)
        raise KeyboardInterrupt
    if not any(row.trial_status in ("completed", "stopped_early") for row in outcome.ranking):
        raise ReidError(f"no trial of search {name} finished; their errors are in the log above")
    logger.info("search %s finished in %.0f s", name, outcome.wall_time_s)
    return 0
