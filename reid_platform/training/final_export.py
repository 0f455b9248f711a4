"""The end of training: export the trained model in the config's formats, beside its checkpoint.

    metrics = export_final_model(model, config, data, checkpoint_dir)

writes `<checkpoint_dir>/export/` (artifacts and `manifest.json`, see `export.run_export`) from
an eval-mode CPU copy of the model and returns `export/latency_ms` and `export/images_per_sec`.
It never raises: a format that fails is recorded in the manifest, and so is anything that goes
wrong around it (loading the images, say), so the run finishes with its checkpoint untouched.
"""

import copy
import logging
from pathlib import Path

import torch
from torch import nn

from reid_platform.config import ReidConfig
from reid_platform.data.build import ReidData
from reid_platform.export import (
    ExportError,
    ExportFailure,
    ManifestFile,
    export_model,
    failure_reason,
    load_validation_images,
    read_manifest_file,
    speed_metrics,
    write_manifest_file,
)
from reid_platform.training.checkpoint_dir import MODEL_FILE

logger = logging.getLogger(__name__)

EXPORT_DIR = "export"
"""The export folder inside the final checkpoint folder (and under a run's artifacts)."""


def export_final_model(
    model: nn.Module, config: ReidConfig, data: ReidData, checkpoint_dir: Path
) -> dict[str, float]:
    """Export `model` (the bare trained model, any device; not modified) as `config.export`
    says into `checkpoint_dir/export`; → the run's export speed metrics ({} when nothing was
    measured or `export.formats` is empty). Never raises (see the module docstring).
    """
    formats = config.export.formats
    if not formats:
        return {}
    out_dir = Path(checkpoint_dir) / EXPORT_DIR
    try:
        cpu_model = cpu_copy(model).eval()
        images = load_validation_images(config, data, limit=config.export.validation_images)
        manifest = export_model(
            cpu_model, config, out_dir, images=images, source_checkpoint=MODEL_FILE
        )
    except Exception as error:  # the run must finish: its checkpoint is already written
        reason = failure_reason(error)
        logger.warning("exporting the final model failed: %s", reason, exc_info=True)
        manifest = _record_failure(config, out_dir, reason)
    exported = ", ".join(f"{e.format} {e.precision}" for e in manifest.exports) or "nothing"
    logger.info("final model exported to %s: %s", out_dir, exported)
    return speed_metrics(manifest, formats)


def cpu_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` on the CPU, built without a second copy on the model's device.

    `copy.deepcopy(model).cpu()` would first clone every parameter and buffer on the GPU. Here
    deepcopy's memo maps each parameter and buffer (BN running statistics and
    `num_batches_tracked` included, persistent or not; tied weights stay tied) to a CPU copy
    made up front, so only the module structure is copied by deepcopy. The copy shares no
    storage with `model`, keeps `requires_grad` and the training/eval flags.
    """
    memo: dict[int, object] = {}
    for parameter in model.parameters():
        memo[id(parameter)] = nn.Parameter(
            parameter.detach().to("cpu", copy=True), requires_grad=parameter.requires_grad
        )
    for buffer in model.buffers():
        memo[id(buffer)] = buffer.detach().to("cpu", copy=True)
    with torch.no_grad():
        return copy.deepcopy(model, memo)


def _record_failure(config: ReidConfig, out_dir: Path, reason: str) -> ManifestFile:
    """Record `reason` as a failure of every configured format (merged into an existing
    manifest when it is readable); → the manifest, also when it cannot be written."""
    precision = config.export.precision
    failures = tuple(
        ExportFailure(format, precision, "failed", reason) for format in config.export.formats
    )
    newer = ManifestFile(failures=failures)
    try:
        merged = read_manifest_file(out_dir).merged(newer)
    except ExportError:  # none yet, or unreadable: the failure alone replaces it
        merged = newer
    try:
        write_manifest_file(merged, out_dir)
    except Exception as error:
        logger.warning("cannot record the export failure in %s: %s", out_dir, error)
    return merged
