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
   continues from its checkpoints), and a FINISHED one is not trained again.
5. Its export is registered; `champion` (or `--alias`) moves to it, unless `gate` finds the
   current champion better on the same validation split: then it is `challenger`.
"""

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from mlflow.entities.model_registry import ModelVersion

from reid_platform import metric_names
from reid_platform.config import ReidConfig, config_hash
from reid_platform.data.build import build_data
from reid_platform.errors import ReidError
from reid_platform.modeling.model_file import load_model_file
from reid_platform.tracking.connection import check_tracking_store
from reid_platform.tracking.distill_runs import record_teacher
from reid_platform.tracking.layout import (
    DISTILL_KIND,
    KIND_TAG,
    REGISTRY_DISTILL_RUN_TAG,
    REGISTRY_LATENCY_TAG,
    RUN_NAME_TAG,
    SEARCH_RUN_TAG,
    TEACHER_RUN_TAG,
)
from reid_platform.tracking.model_files import pin_run_model
from reid_platform.tracking.promotion import (
    CHALLENGER,
    CHAMPION,
    RegisteredPromotion,
    register_promotion,
)
from reid_platform.tracking.registry import check_aliases
from reid_platform.tracking.run_artifacts import download_run_model, final_run_metrics, get_run
from reid_platform.tracking.runs import RunStatus, finish_run, open_training_run
from reid_platform.tracking.teacher_runs import resolve_teacher_run
from reid_platform.training.hooks import TrainingOutcome
from reid_platform.training.validation import TrainingEvaluator
from reid_platform.workflows.student_plan import plan_student
from reid_platform.workflows.teacher_check import TeacherCheck, check_teacher

logger = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class PromotionRequest:
    """What to promote: the student config (overrides applied), the search (run id or name)
    and/or an explicit teacher run, where to register it and how the alias moves."""

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
    """What happened: the distillation run, its teacher, both sides' figures, the version."""

    run_id: str
    run_name: str
    teacher_run_id: str
    search_run_id: str | None
    taken: tuple[str, ...]
    trained: bool
    resumed_after_epoch: int | None
    """The epoch an interrupted run was resumed after (None: trained from the start, or not
    trained now)."""
    teacher_metrics: dict[str, float]
    student_metrics: dict[str, float]
    registered: RegisteredPromotion
    format: str

    def fetch_command(self) -> str:
        name, alias = self.registered.name, self.registered.alias
        return f"reid fetch models:/{name}@{alias} --format {self.format} --out deploy/"


def distill_run_name(config: ReidConfig, teacher_run_id: str) -> str:
    """`distill-<teacher run id[:8]>-<student config hash[:8]>`: the same promotion always
    names the same run (and so resumes it)."""
    return f"distill-{teacher_run_id[:8]}-{config_hash(config)[:8]}"


def _with_run_name(config: ReidConfig, name: str) -> ReidConfig:
    tracking = config.tracking.model_copy(update={"run_name": name})
    return config.model_copy(update={"tracking": tracking})


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _champion_gate(
    config: ReidConfig, student_map: float, request: PromotionRequest, scratch: Path, say: Say
) -> Callable[[ModelVersion], bool]:
    """`may_take(holder)`: the student's validation mAP against the holder's model evaluated
    now on the student's validation split (same images; the holder's own input and
    evaluation settings)."""

    def may_take(holder: ModelVersion) -> bool:
        if not holder.run_id:
            raise ReidError(
                f"{request.alias} version {holder.version} names no run, so the gate cannot "
                "evaluate it; promote without --gate"
            )
        folder = scratch / f"champion-{holder.version}"
        loaded = load_model_file(download_run_model(holder.run_id, request.tracking_uri, folder))
        on_our_data = loaded.config.model_copy(update={"data": config.data})
        evaluator = TrainingEvaluator(on_our_data, build_data(config.data), device=_device())
        held = evaluator.validate(loaded.model.to(evaluator.device)).metrics[metric_names.MAP]
        verdict = "takes" if student_map >= held else "does not take"
        say(
            f"gate: student validation mAP {student_map:.4f}, {request.alias} version "
            f"{holder.version} {held:.4f} on the same validation split: the student {verdict} "
            f"{request.alias}"
        )
        return student_map >= held

    return may_take


def _description(
    config: ReidConfig, teacher_id: str, search_id: str | None, student: dict[str, float]
) -> str:
    """What the registry shows of a promoted version: the student, its teacher, its figures."""
    origin = f"run {teacher_id}" + (f", best trial of search {search_id}" if search_id else "")
    figures = []
    for label, key, scale, unit in (
        ("validation mAP", metric_names.MAP, 100.0, "%"),
        ("test mAP", metric_names.test_metric(metric_names.MAP), 100.0, "%"),
        ("latency", metric_names.EXPORT_LATENCY_MS, 1.0, " ms"),
    ):
        if key in student:
            figures.append(f"{label} {scale * student[key]:.2f}{unit}")
    backbone = config.model.backbone.name
    return f"{backbone} student distilled from {origin}: " + ", ".join(figures)


def _close(tracking_uri: str, run_id: str, status: RunStatus) -> None:
    try:
        finish_run(tracking_uri, run_id, status)
    except ReidError as error:
        logger.warning("could not mark MLflow run %s %s: %s", run_id, status, error)


def _train(
    config: ReidConfig, request: PromotionRequest, run_id: str, check: TeacherCheck
) -> TrainingOutcome:
    from reid_platform.distributed.training_run import run_tracked_training  # ray: import late

    try:
        outcome = run_tracked_training(
            config,
            run_id=run_id,
            tracking_uri=request.tracking_uri,
            working_dir=request.working_dir,
            address=request.address,
            models=check.models,
        )
    except KeyboardInterrupt:
        _close(request.tracking_uri, run_id, "KILLED")
        raise
    except BaseException:
        _close(request.tracking_uri, run_id, "FAILED")
        raise
    finish_run(request.tracking_uri, run_id, "FINISHED")
    return outcome


def _refuse_early(request: PromotionRequest) -> None:
    """Bad input that needs no MLflow: refused before anything is read or written."""
    check_aliases([request.alias])
    if request.alias == CHALLENGER:
        raise ReidError(
            f"--alias {CHALLENGER} is what a student the gate refuses gets; choose another"
        )
    if not request.student.export.formats:
        raise ReidError(
            "the student's export.formats is empty, so there would be nothing to register; "
            "set export.formats=[onnx]"
        )


def promote(request: PromotionRequest, *, say: Say = logger.info) -> PromotionOutcome:
    """Run the promotion (see the module docstring); every refusal is a `ReidError` raised
    before anything is registered or moved."""
    _refuse_early(request)
    check_tracking_store(request.tracking_uri)
    uri = request.tracking_uri
    source = resolve_teacher_run(
        uri,
        search=request.search,
        teacher=request.teacher,
        experiment=request.student.tracking.experiment,
    )
    teacher_id = source.teacher.info.run_id
    search_id = source.search.info.run_id if source.search is not None else None
    if source.search is not None:
        name = source.search.data.tags.get(RUN_NAME_TAG, search_id)
        say(f"teacher: run {teacher_id}, best trial of search {name} (run {search_id})")
    else:
        say(f"teacher: run {teacher_id}")
    with tempfile.TemporaryDirectory(prefix="reid-promote-") as scratch_dir:
        scratch = Path(scratch_dir)
        teacher_file = pin_run_model(teacher_id, uri, scratch / "teacher")
        plan = plan_student(
            request.student, load_model_file(teacher_file[0]).config, teacher_run_id=teacher_id
        )
        for line in plan.taken:
            say(line)
        if request.gate and not plan.config.data.validation.enabled:
            raise ReidError(
                "--gate compares validation mAP, but the teacher's data has no validation split "
                "(data.validation)"
            )
        config = _with_run_name(plan.config, distill_run_name(plan.config, teacher_id))
        check = check_teacher(
            config,
            tracking_uri=uri,
            working_dir=request.working_dir,
            scratch=scratch,
            teacher_file=teacher_file,
        )
        assert config.tracking.run_name is not None
        tracked = open_training_run(
            tracking_uri=uri,
            experiment=config.tracking.experiment,
            run_name=config.tracking.run_name,
            config=config,
            kind=DISTILL_KIND,
        )
        record_teacher(
            uri,
            tracked.run_id,
            teacher_run_id=teacher_id,
            sha256=check.sha256,
            search_run_id=search_id,
            metrics=check.metrics,
        )
        trained, resumed_after = tracked.previous_status != "FINISHED", None
        if trained:
            verb = "resuming" if tracked.resumed else "starting"
            say(f"{verb} distillation run {config.tracking.run_name} (MLflow run {tracked.run_id})")
            start = _train(config, request, tracked.run_id, check).start_epoch
            resumed_after = start if start > 0 else None
        else:
            # Opening the run marked it RUNNING again; it stays what it was.
            finish_run(uri, tracked.run_id, "FINISHED")
            say(f"distillation run {tracked.run_id} has finished already: not trained again")
        student = final_run_metrics(get_run(tracked.run_id, uri), uri)
        format = config.export.formats[0]
        lineage = {
            KIND_TAG: DISTILL_KIND,
            TEACHER_RUN_TAG: teacher_id,
            REGISTRY_DISTILL_RUN_TAG: tracked.run_id,
            **({SEARCH_RUN_TAG: search_id} if search_id else {}),
        }
        latency = student.get(metric_names.EXPORT_LATENCY_MS)
        if latency is not None:
            lineage[REGISTRY_LATENCY_TAG] = f"{latency:.3f}"
        student_map = student.get(metric_names.MAP)
        gate = None
        if request.gate:
            if student_map is None:
                raise ReidError(f"run {tracked.run_id} logged no validation mAP to gate on")
            gate = _champion_gate(config, student_map, request, scratch, say)
        registered = register_promotion(
            uri,
            tracked.run_id,
            name=request.register or config.tracking.registered_model,
            format=format,
            lineage=lineage,
            description=_description(config, teacher_id, search_id, student),
            alias=request.alias,
            may_take=gate,
        )
    return PromotionOutcome(
        run_id=tracked.run_id,
        run_name=config.tracking.run_name,
        teacher_run_id=teacher_id,
        search_run_id=search_id,
        taken=plan.taken,
        trained=trained,
        resumed_after_epoch=resumed_after,
        teacher_metrics=check.metrics,
        student_metrics=student,
        registered=registered,
        format=format,
    )
