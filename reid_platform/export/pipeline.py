"""One verified ONNX export: export → parity → validation mAP → speed → its manifest record.

`run_export.export_model` runs this for every requested ONNX precision (and for the ONNX a
TensorRT engine is built from) and writes the folder's `manifest.json`.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reid_platform.config import ReidConfig, config_hash
from reid_platform.evaluation import build_evaluator
from reid_platform.export.artifact_names import artifact_name
from reid_platform.export.embedder import ComputeDtype
from reid_platform.export.errors import ExportError
from reid_platform.export.manifest import ExportManifest, onnx_manifest
from reid_platform.export.onnx_export import OnnxExport, export_onnx
from reid_platform.export.onnx_runtime import OnnxRuntimeEmbedder
from reid_platform.export.parity import DEFAULT_BATCH_SIZES, ParityReport, verify_onnx
from reid_platform.export.speed import measure_speed
from reid_platform.export.validation_map import LabeledImages, MapComparison, validation_map

logger = logging.getLogger(__name__)

PARITY_IMAGES = 32
"""At most this many validation images (query first) are used for a parity check."""

MIN_COSINE: dict[str, float] = {"fp16": 0.999, "int8": 0.9, "tensorrt-fp32": 0.9999}
"""Parity of reduced-precision exports is judged by the worst cosine similarity of embeddings
(their absolute differences are of the precision's own size); so is a TensorRT fp32 engine,
whose builder may use TF32 kernels. An ONNX fp32 export is held to `export.parity_tolerance`
(max abs)."""


@dataclass(frozen=True)
class VerifiedExport:
    """An ONNX export that passed its parity check, and its manifest record."""

    export: OnnxExport
    manifest: ExportManifest


def parity_images(query: LabeledImages, gallery: LabeledImages) -> torch.Tensor:
    """The first `PARITY_IMAGES` images of query then gallery, (n, 3, H, W) 0-255."""
    return torch.cat([query.images, gallery.images])[:PARITY_IMAGES]


def require_parity(
    report: ParityReport,
    *,
    what: str,
    max_abs: float | None = None,
    min_cosine: float | None = None,
) -> None:
    """Raise `ExportError` (one sentence) unless `report` is within the given bounds."""
    if max_abs is not None and not report.within(max_abs):
        raise ExportError(
            f"the {what} differs from PyTorch by up to {report.max_abs_diff:.2e} (more than "
            f"{max_abs:.0e}) on {report.num_images} validation images"
        )
    if min_cosine is not None and report.min_cosine < min_cosine:
        raise ExportError(
            f"the {what} embeddings reach only cosine similarity {report.min_cosine:.5f} with "
            f"PyTorch's (less than {min_cosine}) on {report.num_images} validation images"
        )


def export_verified_onnx(
    model: nn.Module,
    config: ReidConfig,
    out_dir: Path,
    *,
    query: LabeledImages,
    gallery: LabeledImages,
    precision: ComputeDtype = "fp32",
    source_checkpoint: str | None = None,
    measure: bool = True,
    measure_map: bool = True,
) -> VerifiedExport:
    """Export `model` (built from `config`) to `out_dir/model.onnx` (`model.fp16.onnx`), verify it.

    query / gallery: validation images (never the test split) with ids, (n, 3, H, W) 0-255;
        the first `PARITY_IMAGES` of them (≥ 7) also serve the parity check at batch 1 and 7.
    measure: time onnxruntime-CPU vs eager PyTorch (`config.export.throughput_batch`).
    measure_map: compute the validation mAP of both (False when the images are not a
        validation split: the record's `validation_map` is then None).
    Raises `ExportError` when onnxruntime differs from PyTorch by more than
    `config.export.parity_tolerance` (fp32) or below `MIN_COSINE["fp16"]` (fp16).
    """
    out_dir = Path(out_dir)
    exported = export_onnx(
        model, config.export, out_dir / artifact_name("onnx", precision), precision=precision
    )
    parity = verify_onnx(
        exported, model, parity_images(query, gallery), batch_sizes=DEFAULT_BATCH_SIZES
    )
    if precision == "fp32":
        require_parity(parity, what="ONNX export", max_abs=config.export.parity_tolerance)
    else:
        require_parity(parity, what=f"{precision} ONNX export", min_cosine=MIN_COSINE[precision])
    maps: MapComparison | None = None
    if measure_map:
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
    logger.info(
        "%s ONNX export verified: max abs %.1e, min cosine %.6f%s",
        precision,
        parity.max_abs_diff,
        parity.min_cosine,
        f", mAP {maps.exported_map:.4f} (PyTorch {maps.pytorch_map:.4f})" if maps else "",
    )
    return VerifiedExport(exported, manifest)
