"""The whole ONNX export of one model, as a finished run needs it: export → parity → validation
mAP → speed → `manifest.json`, all in `out_dir`. No MLflow here: `tracking/` logs the folder.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reid_platform.config import ReidConfig, config_hash
from reid_platform.evaluation import build_evaluator
from reid_platform.export.errors import ExportError
from reid_platform.export.manifest import ExportManifest, onnx_manifest, write_manifest
from reid_platform.export.onnx_export import OnnxExport, export_onnx
from reid_platform.export.onnx_runtime import OnnxRuntimeEmbedder
from reid_platform.export.parity import DEFAULT_BATCH_SIZES, verify_onnx
from reid_platform.export.speed import measure_speed
from reid_platform.export.validation_map import LabeledImages, validation_map

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
PARITY_IMAGES = 32
"""At most this many validation images (query first) are used for the parity check."""

FP32_PARITY_TOLERANCE = 1e-4
"""Max abs difference allowed between onnxruntime and eager PyTorch for an fp32 export."""


@dataclass(frozen=True)
class VerifiedExport:
    """An ONNX export that passed its parity check, and its manifest (at `manifest_path`)."""

    export: OnnxExport
    manifest: ExportManifest
    manifest_path: Path


def export_verified_onnx(
    model: nn.Module,
    config: ReidConfig,
    out_dir: Path,
    *,
    query: LabeledImages,
    gallery: LabeledImages,
    source_checkpoint: str | None = None,
    measure: bool = True,
    tolerance: float = FP32_PARITY_TOLERANCE,
) -> VerifiedExport:
    """Export `model` (built from `config`) to `out_dir/model.onnx` and verify it.

    query / gallery: validation images (never the test split) with ids, (n, 3, H, W) 0-255;
        the first `PARITY_IMAGES` of them (≥ 7) also serve the parity check at batch 1 and 7.
    measure: time onnxruntime-CPU vs eager PyTorch (`config.export.throughput_batch`).
    Raises `ExportError` when onnxruntime differs from PyTorch by more than `tolerance`.
    """
    out_dir = Path(out_dir)
    exported = export_onnx(model, config.export, out_dir / ONNX_FILE)
    images = torch.cat([query.images, gallery.images])[:PARITY_IMAGES]
    parity = verify_onnx(exported, model, images, batch_sizes=DEFAULT_BATCH_SIZES)
    if not parity.within(tolerance):
        raise ExportError(
            f"the ONNX export differs from PyTorch by up to {parity.max_abs_diff:.2e} "
            f"(more than {tolerance:.0e}) on {parity.num_images} validation images"
        )
    maps = validation_map(
        OnnxRuntimeEmbedder(exported.path),
        model,
        query,
        gallery,
        evaluator=build_evaluator(config.evaluation),
        normalized=exported.normalized,
    )
    speed = (
        measure_speed(model, exported, throughput_batch=config.export.throughput_batch)
        if measure
        else None
    )
    manifest = onnx_manifest(
        exported,
        parity=parity,
        validation_map=maps,
        speed=speed,
        config_hash=config_hash(config),
        source_checkpoint=source_checkpoint,
    )
    manifest_path = write_manifest(manifest, out_dir)
    logger.info(
        "ONNX export verified: max abs %.1e, mAP %.4f (PyTorch %.4f)",
        parity.max_abs_diff,
        maps.exported_map,
        maps.pytorch_map,
    )
    return VerifiedExport(exported, manifest, manifest_path)
