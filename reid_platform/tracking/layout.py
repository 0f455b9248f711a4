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

__all__ = [
    "CONFIG_ARTIFACT",
    "CONFIG_HASH_TAG",
    "DISTANCE_HISTOGRAM",
    "FINAL_METRICS",
    "KIND_TAG",
    "MODEL_CHECKPOINT",
    "PARENT_RUN_TAG",
    "RANK_LIST_DIR",
    "ROC_FIGURE",
    "ROC_TABLE",
    "RUN_NAME_TAG",
]
