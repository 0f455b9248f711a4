"""What a distillation run records about its teacher (`reid.kind=distill`).

Tags name the teacher's run, the SHA-256 of the model file it was pinned to, and the search it
was promoted from; `teacher/*` metrics put the teacher's figures next to the student's. A
relaunch of the same run must find the same teacher file: a different hash is refused, since
resuming would then continue training under another teacher.
"""

from collections.abc import Mapping
from functools import partial

from mlflow.tracking import MlflowClient

from reid_platform.errors import ReidError
from reid_platform.tracking.layout import SEARCH_RUN_TAG, TEACHER_RUN_TAG, TEACHER_SHA256_TAG
from reid_platform.tracking.metric_logger import MetricLogger
from reid_platform.tracking.retry import call_with_retries


def record_teacher(
    tracking_uri: str,
    run_id: str,
    *,
    teacher_run_id: str | None,
    sha256: str | None,
    search_run_id: str | None,
    metrics: Mapping[str, float],
) -> None:
    """Tag run `run_id` with its teacher and log the `teacher/*` metrics (step 0, once).

    Raises `ReidError` when the run already names another teacher or another model-file hash
    (the search is kept as first recorded).
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    tags = call_with_retries(
        lambda: client.get_run(run_id).data.tags,
        what=f"reading run {run_id}",
        tracking_uri=tracking_uri,
    )
    wanted = {
        TEACHER_RUN_TAG: teacher_run_id,
        TEACHER_SHA256_TAG: sha256,
        SEARCH_RUN_TAG: search_run_id,
    }
    for key, value in wanted.items():
        held = tags.get(key)
        # The search is lineage only: the same teacher promoted from two searches is one run.
        if key != SEARCH_RUN_TAG and value is not None and held is not None and held != value:
            what = "teacher checkpoint" if key == TEACHER_SHA256_TAG else key
            raise ReidError(
                f"run {run_id} was launched with {what} {held[:16]}, not {value[:16]}: the teacher "
                "changed since, so this run cannot be resumed; start a new run"
            )
    for key, value in wanted.items():
        if value is not None and key not in tags:
            call_with_retries(
                partial(client.set_tag, run_id, key, value),
                what=f"tagging run {run_id}",
                tracking_uri=tracking_uri,
            )
    MetricLogger(tracking_uri, run_id).log(dict(metrics), step=0)
