"""`reid promote`: a search's best trial teaches a smaller student, which is exported, verified
and registered as the model to ship.

    outcome = promote(PromotionRequest(student=load_config("experiments/distill_quickstart.yaml"),
                                       search="quickstart-search-…", tracking_uri=uri, ...))

1. The teacher: the search's `reid.best_run_id` (or `--teacher`), FINISHED, with its model file
   (`tracking.teacher_runs`).
2. The student config: the student's own model, solver and losses on the teacher's data and
   input size (`student_plan`); every setting taken over is reported, one line each.
3. The teacher is pinned by SHA-256, checked against the student and re-evaluated on the
   validation split (`teacher_check`), before any MLflow run is opened.
4. One distillation run (`reid.kind=distill`, not a child of the search), named after the
   teacher and the student config's hash: relaunching the same promotion resumes it (Ray Train
   continues from its checkpoints), and a FINISHED one is neither reopened nor trained again
   (only its teacher's hash is compared with the one it was trained with).
5. Its export is registered; `champion` (or `--alias`) moves to it, unless `gate` finds the
   current champion better on the same validation split: then it is `challenger`.
"""

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reid_platform import metric_names
from reid_platform.config import ReidConfig, config_hash
from reid_platform.errors import ReidError
from reid_platform.modeling.model_file import read_model_config
from reid_platform.tracking.connection import check_tracking_store
from reid_platform.tracking.distill_runs import record_teacher
from reid_platform.tracking.layout import (
    DISTILL_KIND,
    KIND_TAG,
    REGISTRY_DISTILL_RUN_TAG,
    REGISTRY_LATENCY_TAG,
    SEARCH_RUN_TAG,
    TEACHER_RUN_TAG,
    TEACHER_SHA256_TAG,
)
from reid_platform.tracking.model_files import RunModelFile, pin_run_model
from reid_platform.tracking.promotion import (
    CHALLENGER,
    CHAMPION,
    RegisteredPromotion,
    register_promotion,
)
from reid_platform.tracking.registry import check_aliases
from reid_platform.tracking.run_artifacts import final_run_metrics, get_run
from reid_platform.tracking.runs import (
    RunStatus,
    find_training_run,
    finish_run,
    open_training_run,
)
from reid_platform.tracking.teacher_runs import TeacherSource, resolve_teacher_run
from reid_platform.workflows.champion_gate import champion_gate
from reid_platform.workflows.student_plan import plan_student
from reid_platform.workflows.teacher_check import TeacherCheck, check_teacher

logger = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class PromotionRequest:
    """What to promote: the student config (overrides applied), the search (run id or name;
    None: the latest search of the student's experiment) and/or an explicit teacher run,
    where to register it and how the alias moves."""

    student: ReidConfig
    search: str | None
    teacher: str | None = None
    register: str | None = None
    alias: str = CHAMPION
    gate: bool = False
    tracking_uri: str
    address: str | None = None
    working_dir: Path


@dataclass(frozen=True)
class PromotionOutcome:
    """What happened: the distillation run, its teacher, both sides' figures, the version.

    student_metrics: the run's final metrics, its `teacher/*` figures included.
    resumed_after_epoch: the epoch an interrupted run was resumed after (None: trained from
    the start, or not trained now).
    """

    run_id: str
    run_name: str
    teacher_run_id: str
    search_run_id: str | None
    taken: tuple[str, ...]
    trained: bool
    resumed_after_epoch: int | None
    student_metrics: dict[str, float]
    registered: RegisteredPromotion
    format: str

    def fetch_command(self) -> str:
        uri = self.registered.model_uri
        return f"reid fetch {uri} --format {self.format} --out deploy/"


@dataclass(frozen=True)
class _Distillation:
    """The distillation run of a promotion: its id, whether it was trained by this launch and
    after which epoch it resumed."""

    run_id: str
    trained: bool
    resumed_after_epoch: int | None


def distill_run_name(config: ReidConfig, teacher_run_id: str) -> str:
    """`distill-<teacher run id[:8]>-<student config hash[:8]>`: the same promotion always
    names the same run (and so resumes it)."""
    return f"distill-{teacher_run_id[:8]}-{config_hash(config)[:8]}"


def _with_run_name(config: ReidConfig, name: str) -> ReidConfig:
    tracking = config.tracking.model_copy(update={"run_name": name})
    return config.model_copy(update={"tracking": tracking})


def _description(config: ReidConfig, source: TeacherSource, student: dict[str, float]) -> str:
    """What the registry shows of a promoted version: the student, its teacher, its figures."""
    figures = []
    for label, key, scale, unit in (
        ("validation mAP", metric_names.MAP, 100.0, "%"),
        ("test mAP", metric_names.test_metric(metric_names.MAP), 100.0, "%"),
        ("latency", metric_names.EXPORT_LATENCY_MS, 1.0, " ms"),
    ):
        if key in student:
            figures.append(f"{label} {scale * student[key]:.2f}{unit}")
    backbone = config.model.backbone.name
    return f"{backbone} student distilled from {source.describe()}: " + ", ".join(figures)


def _close(tracking_uri: str, run_id: str, status: RunStatus) -> None:
    try:
        finish_run(tracking_uri, run_id, status)
    except ReidError as error:
        logger.warning("could not mark MLflow run %s %s: %s", run_id, status, error)


def _refuse_early(request: PromotionRequest) -> None:
    """Bad input that needs no MLflow: refused before anything is read or written."""
    check_aliases([request.alias])
    if request.alias == CHALLENGER:
        raise ReidError(
            f"--alias {CHALLENGER} is what a student that the gate refuses gets; choose another"
        )
    if not request.student.export.formats:
        raise ReidError(
            "the student's export.formats is empty, so there would be nothing to register; "
            "set export.formats=[onnx]"
        )


def _finished_before(config: ReidConfig, uri: str, pinned: RunModelFile) -> str | None:
    """The id of this promotion's run when an earlier launch finished it (refused when its
    teacher's model file has changed since); None when it is still to be trained."""
    assert config.tracking.run_name is not None
    run = find_training_run(
        uri, experiment=config.tracking.experiment, run_name=config.tracking.run_name
    )
    if run is None or run.info.status != "FINISHED":
        return None
    trained_with = run.data.tags.get(TEACHER_SHA256_TAG)
    if trained_with is not None and trained_with != pinned.sha256:
        raise ReidError(
            f"run {run.info.run_id} was distilled from teacher checkpoint {trained_with[:12]}…, "
            f"but run {pinned.run_id}'s checkpoint is now {pinned.sha256[:12]}…; promote "
            "again from the search once the teacher is settled"
        )
    return run.info.run_id


def _distil(
    config: ReidConfig,
    request: PromotionRequest,
    check: TeacherCheck,
    source: TeacherSource,
    say: Say,
) -> _Distillation:
    """Open (or reopen) the distillation run, record its teacher and train it on Ray Train;
    an interrupted or failed launch leaves the run KILLED or FAILED, never RUNNING."""
    from reid_platform.distributed.training_run import run_tracked_training  # ray: late

    assert config.tracking.run_name is not None
    uri = request.tracking_uri
    tracked = open_training_run(
        tracking_uri=uri,
        experiment=config.tracking.experiment,
        run_name=config.tracking.run_name,
        config=config,
        kind=DISTILL_KIND,
    )
    verb = "resuming" if tracked.resumed else "starting"
    logger.info(
        "%s distillation run %s (MLflow run %s)", verb, config.tracking.run_name, tracked.run_id
    )
    try:
        record_teacher(
            uri,
            tracked.run_id,
            teacher_run_id=source.teacher.info.run_id,
            sha256=check.sha256,
            search_run_id=source.search.info.run_id if source.search is not None else None,
            metrics=check.metrics,
        )
        outcome = run_tracked_training(
            config,
            run_id=tracked.run_id,
            tracking_uri=uri,
            working_dir=request.working_dir,
            address=request.address,
            models=check.models,
        )
    except KeyboardInterrupt:
        _close(uri, tracked.run_id, "KILLED")
        raise
    except BaseException:
        _close(uri, tracked.run_id, "FAILED")
        raise
    finish_run(uri, tracked.run_id, "FINISHED")
    start = outcome.start_epoch
    return _Distillation(tracked.run_id, True, start if start > 0 else None)


def _lineage(source: TeacherSource, run_id: str, student: dict[str, float]) -> dict[str, str]:
    lineage = {
        KIND_TAG: DISTILL_KIND,
        TEACHER_RUN_TAG: source.teacher.info.run_id,
        REGISTRY_DISTILL_RUN_TAG: run_id,
    }
    if source.search is not None:
        lineage[SEARCH_RUN_TAG] = source.search.info.run_id
    latency = student.get(metric_names.EXPORT_LATENCY_MS)
    if latency is not None:
        lineage[REGISTRY_LATENCY_TAG] = f"{latency:.3f}"
    return lineage


def _register(
    config: ReidConfig,
    request: PromotionRequest,
    source: TeacherSource,
    run_id: str,
    scratch: Path,
    say: Say,
) -> tuple[dict[str, float], RegisteredPromotion]:
    """The run's final metrics, and its export registered with the alias moved (gated)."""
    uri = request.tracking_uri
    student = final_run_metrics(get_run(run_id, uri), uri)
    gate = None
    if request.gate:
        student_map = student.get(metric_names.MAP)
        if student_map is None:
            raise ReidError(f"run {run_id} logged no validation mAP to gate on")
        gate = champion_gate(
            config, student_map, alias=request.alias, tracking_uri=uri, scratch=scratch, say=say
        )
    registered = register_promotion(
        uri,
        run_id,
        name=request.register or config.tracking.registered_model,
        format=config.export.formats[0],
        lineage=_lineage(source, run_id, student),
        description=_description(config, source, student),
        alias=request.alias,
        may_take=gate,
    )
    return student, registered


def _student_config(
    request: PromotionRequest, source: TeacherSource, teacher_file: Path, say: Say
) -> tuple[ReidConfig, tuple[str, ...]]:
    """The student's resolved config, named after its teacher, and what it took over."""
    teacher_id = source.teacher.info.run_id
    plan = plan_student(request.student, read_model_config(teacher_file), teacher_run_id=teacher_id)
    for line in plan.taken:
        say(line)
    if request.gate and not plan.config.data.validation.enabled:
        raise ReidError(
            "--gate compares validation mAP, but the teacher's data has no validation split "
            "(data.validation)"
        )
    return _with_run_name(plan.config, distill_run_name(plan.config, teacher_id)), plan.taken


def promote(request: PromotionRequest, *, say: Say = logger.info) -> PromotionOutcome:
    """Run the promotion (see the module docstring); every refusal is a `ReidError` raised
    before anything is registered or moved."""
    _refuse_early(request)
    uri = request.tracking_uri
    check_tracking_store(uri)
    source = resolve_teacher_run(
        uri,
        search=request.search,
        teacher=request.teacher,
        experiment=request.student.tracking.experiment,
    )
    say(f"teacher: {source.describe()}")
    with tempfile.TemporaryDirectory(prefix="reid-promote-") as scratch_dir:
        scratch = Path(scratch_dir)
        teacher_file = pin_run_model(source.teacher.info.run_id, uri, scratch / "teacher")
        config, taken = _student_config(request, source, teacher_file[0], say)
        finished = _finished_before(config, uri, teacher_file[1])
        if finished is not None:
            say(f"distillation run {finished} has finished already: not trained again")
            done = _Distillation(finished, False, None)
        else:
            check = check_teacher(
                config,
                tracking_uri=uri,
                working_dir=request.working_dir,
                scratch=scratch,
                teacher_file=teacher_file,
            )
            done = _distil(config, request, check, source, say)
        student, registered = _register(config, request, source, done.run_id, scratch, say)
    assert config.tracking.run_name is not None
    return PromotionOutcome(
        run_id=done.run_id,
        run_name=config.tracking.run_name,
        teacher_run_id=source.teacher.info.run_id,
        search_run_id=source.search.info.run_id if source.search is not None else None,
        taken=taken,
        trained=done.trained,
        resumed_after_epoch=done.resumed_after_epoch,
        student_metrics=student,
        registered=registered,
        format=config.export.formats[0],
    )
