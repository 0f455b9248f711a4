"""Artifact paths and tag names inside an MLflow run (DESIGN.md, "MLflow layout"), named once.

Evaluation figures keep the relative paths `reid eval --report DIR` writes, so a report folder
logged as the run's artifact root lands exactly on this layout.
"""

from reid_platform.evaluation.report_files import (
    DISTANCE_HISTOGRAM,
    RANK_LIST_DIR,
    ROC_FIGURE,
    ROC_TABLE,
)

CONFIG_ARTIFACT = "config.yaml"
MODEL_CHECKPOINT = "checkpoints/model.pt"
FINAL_METRICS = "metrics/final.json"

# Tags: what made a run (`reid.kind`: train, search, trial, distill), the name a relaunch finds
# it by, and the hash that stops a changed config from continuing it.
KIND_TAG = "reid.kind"
RUN_NAME_TAG = "reid.run_name"
CONFIG_HASH_TAG = "reid.config_hash"
PARENT_RUN_TAG = "mlflow.parentRunId"

# A distillation run (`reid.kind=distill`): its teacher's run and model-file hash, the search
# the teacher was promoted from, and the registered version its export became.
DISTILL_KIND = "distill"
TEACHER_RUN_TAG = "reid.teacher_run_id"
TEACHER_SHA256_TAG = "reid.teacher_checkpoint_sha256"
SEARCH_RUN_TAG = "reid.search_run_id"
REGISTERED_MODEL_TAG = "reid.registered_model"
REGISTERED_VERSION_TAG = "reid.registered_version"

# A search: the parent run (`reid.kind=search`) names its objective; each child run
# (`reid.kind=trial`) carries its Tune trial id, its outcome and the params it sampled.
SEARCH_KIND = "search"
TRIAL_KIND = "trial"
OBJECTIVE_TAG = "reid.objective"
MODE_TAG = "reid.mode"
SPACE_HASH_TAG = "reid.space_hash"
TRIAL_ID_TAG = "reid.trial_id"
TRIAL_STATUS_TAG = "reid.trial_status"
TRIAL_ERROR_TAG = "reid.trial_error"
TRIAL_REASON_TAG = "reid.trial_reason"
SEARCHED_PARAMS_TAG = "reid.searched_params"
BEST_RUN_TAG = "reid.best_run_id"
PARETO_RUNS_TAG = "reid.pareto_run_ids"
SEARCH_SPACE_ARTIFACT = "search_space.yaml"
TRIALS_ARTIFACT = "trials.csv"
FIGURES_DIR = "figures"

# Exports: the files of `export.manifest_file` under export/, one run tag per format attempted
# (`exported fp32`, `skipped: <reason>`, `failed: <reason>`), and the tags of a registered model
# version created from a run's export (they name the one artifact the version stands for).
EXPORT_DIR = "export"
EXPORT_MANIFEST = f"{EXPORT_DIR}/manifest.json"
EXPORT_VERSIONS_DIR = f"{EXPORT_DIR}/versions"
"""Registered versions' own copies: `export/versions/<sha256[:12]>/` (artifact + manifest)."""
EXPORT_TAG_PREFIX = "reid.export."
EXPORT_LOG_ERROR_TAG = "reid.export_log_error"
EXPORT_TAG_REASON_LIMIT = 500
REGISTRY_FORMAT_TAG = "reid.format"
REGISTRY_PRECISION_TAG = "reid.precision"
REGISTRY_ARTIFACT_TAG = "reid.artifact"
REGISTRY_SHA256_TAG = "reid.sha256"
REGISTRY_VALIDATION_MAP_TAG = "reid.validation_mAP"
REGISTRY_PARITY_TAG = "reid.parity_max_abs"
# Lineage of a version registered by `reid promote` (MLflow keeps no alias history, so the
# version that held the alias before is recorded on the new one).
REGISTRY_DISTILL_RUN_TAG = "reid.distill_run_id"
REGISTRY_LATENCY_TAG = "reid.latency_ms"
REGISTRY_PROMOTION_TAG = "reid.promotion"
REGISTRY_PREVIOUS_CHAMPION_TAG = "reid.previous_champion"


def export_tag(format: str) -> str:
    """`reid.export.<format>`: the run tag saying how the latest export of `format` went."""
    return f"{EXPORT_TAG_PREFIX}{format}"


__all__ = [
    "BEST_RUN_TAG",
    "CONFIG_ARTIFACT",
    "CONFIG_HASH_TAG",
    "DISTANCE_HISTOGRAM",
    "DISTILL_KIND",
    "EXPORT_DIR",
    "EXPORT_LOG_ERROR_TAG",
    "EXPORT_MANIFEST",
    "EXPORT_TAG_PREFIX",
    "EXPORT_TAG_REASON_LIMIT",
    "EXPORT_VERSIONS_DIR",
    "FIGURES_DIR",
    "FINAL_METRICS",
    "KIND_TAG",
    "MODEL_CHECKPOINT",
    "MODE_TAG",
    "OBJECTIVE_TAG",
    "PARENT_RUN_TAG",
    "PARETO_RUNS_TAG",
    "RANK_LIST_DIR",
    "REGISTERED_MODEL_TAG",
    "REGISTERED_VERSION_TAG",
    "REGISTRY_ARTIFACT_TAG",
    "REGISTRY_DISTILL_RUN_TAG",
    "REGISTRY_FORMAT_TAG",
    "REGISTRY_LATENCY_TAG",
    "REGISTRY_PARITY_TAG",
    "REGISTRY_PRECISION_TAG",
    "REGISTRY_PREVIOUS_CHAMPION_TAG",
    "REGISTRY_PROMOTION_TAG",
    "REGISTRY_SHA256_TAG",
    "REGISTRY_VALIDATION_MAP_TAG",
    "ROC_FIGURE",
    "ROC_TABLE",
    "RUN_NAME_TAG",
    "SEARCHED_PARAMS_TAG",
    "SEARCH_KIND",
    "SEARCH_RUN_TAG",
    "SEARCH_SPACE_ARTIFACT",
    "SPACE_HASH_TAG",
    "TEACHER_RUN_TAG",
    "TEACHER_SHA256_TAG",
    "TRIALS_ARTIFACT",
    "TRIAL_ERROR_TAG",
    "TRIAL_ID_TAG",
    "TRIAL_KIND",
    "TRIAL_REASON_TAG",
    "TRIAL_STATUS_TAG",
    "export_tag",
]
