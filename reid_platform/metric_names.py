"""Metric names shared by the evaluator, Ray Tune and MLflow (DESIGN.md, "Metric keys").

Every name is a constant here, so a search objective, a logged metric and a table column can
never drift apart. Values logged under these names are fractions in [0, 1].
"""

EVAL_PREFIX = "eval/"
"""Validation-split metrics (measured on evaluation epochs, only with a validation split)."""

RANK1 = "eval/rank1"
RANK5 = "eval/rank5"
RANK10 = "eval/rank10"
MAP = "eval/mAP"
MINP = "eval/mINP"
TAR_AT_FAR_1E4 = "eval/tar_at_far_1e-4"
TAR_AT_FAR_1E3 = "eval/tar_at_far_1e-3"
TAR_AT_FAR_1E2 = "eval/tar_at_far_1e-2"

CMC_RANKS = (1, 5, 10)
"""The CMC ranks reported as metrics (`eval/rank<k>`)."""

FAR_TARGETS = (1e-4, 1e-3, 1e-2)
"""False-accept rates at which the true-accept rate is reported (`eval/tar_at_far_<x>`)."""

EVAL_METRICS = (RANK1, RANK5, RANK10, MAP, MINP, TAR_AT_FAR_1E4, TAR_AT_FAR_1E3, TAR_AT_FAR_1E2)

TRAIN_LOSS = "train/loss"
TRAIN_LR = "train/lr"
TRAIN_IMAGES_PER_SEC = "train/images_per_sec"
EXPORT_LATENCY_MS = "export/latency_ms"
"""Batch-1 median latency (ms) of a run's first exported format (`config.export.formats` order)."""
EXPORT_IMAGES_PER_SEC = "export/images_per_sec"
"""Throughput (images/s, at `export.throughput_batch`) of the same export as EXPORT_LATENCY_MS."""
MODEL_PARAMS = "model/params"

EXPORT_PREFIX = "export/"
"""Measured on a run's exported model, once, when its training finishes (not per epoch)."""

SEARCH_METRICS = (*EVAL_METRICS, MODEL_PARAMS, EXPORT_LATENCY_MS, EXPORT_IMAGES_PER_SEC)
"""Metrics a search objective may name (validation metrics, model size, exported-model speed)."""


def rank_metric(rank: int) -> str:
    """`eval/rank<k>` for CMC rank k."""
    return f"eval/rank{rank}"


def tar_at_far_metric(far: float) -> str:
    """`eval/tar_at_far_1e-4` for far=1e-4 (the exponent form used in every metric name)."""
    return f"eval/tar_at_far_{far:.0e}".replace("e-0", "e-")


def train_loss_metric(term: str) -> str:
    """`train/loss_<term>` for one weighted loss term."""
    return f"train/loss_{term}"


TEST_PREFIX = "test/"
"""Test-split metrics (the one evaluation at the end of training) mirror `eval/*` under `test/`."""


def test_metric(eval_name: str, dataset: str | None = None) -> str:
    """`eval/mAP` → `test/mAP`, or `test/<dataset>/mAP` when a run has several test datasets."""
    if not eval_name.startswith("eval/"):
        raise ValueError(f"{eval_name!r} is not an eval/* metric name")
    suffix = eval_name.removeprefix("eval/")
    return f"{TEST_PREFIX}{dataset}/{suffix}" if dataset else f"{TEST_PREFIX}{suffix}"


test_metric.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

TEACHER_PREFIX = "teacher/"
"""A distillation run's teacher, logged on the distillation run next to the student's own
metrics: `teacher/eval/mAP` (re-measured on the validation split before training),
`teacher/test/mAP`, `teacher/model/params`, `teacher/export/latency_ms` (from its run)."""


def teacher_metric(name: str) -> str:
    """`eval/mAP` → `teacher/eval/mAP`."""
    return f"{TEACHER_PREFIX}{name}"
