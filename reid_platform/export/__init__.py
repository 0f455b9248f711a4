"""Export: ONNX (dynamo exporter, onnxruntime parity, validation mAP, speed), TensorRT engines
(TensorRT 10 and 11, built and run with its Python API) and the export manifest.

    images = load_validation_images(config, data, limit=config.export.validation_images)
    manifest = export_model(model, config, out_dir, images=images)   # all config formats
    metrics = speed_metrics(manifest, config.export.formats)         # export/latency_ms, ...

`out_dir` then holds the artifacts (`artifact_name(format, precision)`: `model.onnx`,
`model.fp16.engine`, ...) and `manifest.json` (`ManifestFile`: one `ExportManifest` per
artifact, one `ExportFailure` per format skipped or failed). Step by step:

    exported = export_onnx(model, config.export, out_dir / "model.onnx")
    parity = verify_onnx(exported, model, validation_images)          # batch sizes 1 and 7
    maps = validation_map(OnnxRuntimeEmbedder(exported.path), model, query, gallery,
                          evaluator=build_evaluator(config.evaluation),
                          normalized=exported.normalized)
    speed = measure_speed(model, exported, throughput_batch=config.export.throughput_batch)
    record = onnx_manifest(exported, parity=parity, validation_map=maps, speed=speed)
    write_manifest_file(ManifestFile(exports=(record,)), out_dir)

The core of the platform: no Ray, no MLflow (logging the files is `tracking/`'s job). TensorRT
is imported only when an engine is built or run; `tensorrt_unavailable_reason()` says in one
sentence what is missing on a machine without it or without a GPU.
"""

from reid_platform.export.artifact_names import (
    FORMATS,
    PRECISIONS,
    Format,
    Precision,
    artifact_name,
)
from reid_platform.export.embedder import (
    INPUT_NAME,
    OUTPUT_NAME,
    ExportedEmbedder,
    InputContract,
    input_contract,
)
from reid_platform.export.errors import ExportError
from reid_platform.export.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    ExportFailure,
    ExportManifest,
    ManifestFile,
    file_sha256,
    onnx_manifest,
    read_manifest_file,
    tensorrt_manifest,
    verify_artifact,
    write_manifest_file,
)
from reid_platform.export.onnx_export import OnnxExport, export_onnx, read_export_metadata
from reid_platform.export.onnx_runtime import OnnxRuntimeEmbedder
from reid_platform.export.parity import ParityReport, check_parity, pytorch_embeddings, verify_onnx
from reid_platform.export.pipeline import MIN_COSINE, VerifiedExport, export_verified_onnx
from reid_platform.export.run_export import export_model, failure_reason, speed_metrics
from reid_platform.export.speed import BackendSpeed, SpeedReport, measure_backends, measure_speed
from reid_platform.export.trt_availability import tensorrt_unavailable_reason
from reid_platform.export.trt_build import BatchProfile, EngineBuild, build_engine
from reid_platform.export.trt_run import (
    TensorRTEmbedder,
    measure_tensorrt_speed,
    run_engine,
    verify_engine,
)
from reid_platform.export.validation_images import ValidationImages, load_validation_images
from reid_platform.export.validation_map import LabeledImages, MapComparison, validation_map

__all__ = [
    "FORMATS",
    "INPUT_NAME",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "MIN_COSINE",
    "OUTPUT_NAME",
    "PRECISIONS",
    "BackendSpeed",
    "BatchProfile",
    "EngineBuild",
    "ExportError",
    "ExportFailure",
    "ExportManifest",
    "ExportedEmbedder",
    "Format",
    "InputContract",
    "LabeledImages",
    "ManifestFile",
    "MapComparison",
    "OnnxExport",
    "OnnxRuntimeEmbedder",
    "ParityReport",
    "Precision",
    "SpeedReport",
    "TensorRTEmbedder",
    "ValidationImages",
    "VerifiedExport",
    "artifact_name",
    "build_engine",
    "check_parity",
    "export_model",
    "export_onnx",
    "export_verified_onnx",
    "failure_reason",
    "file_sha256",
    "input_contract",
    "load_validation_images",
    "measure_backends",
    "measure_speed",
    "measure_tensorrt_speed",
    "onnx_manifest",
    "pytorch_embeddings",
    "read_export_metadata",
    "read_manifest_file",
    "run_engine",
    "speed_metrics",
    "tensorrt_manifest",
    "tensorrt_unavailable_reason",
    "validation_map",
    "verify_artifact",
    "verify_engine",
    "verify_onnx",
    "write_manifest_file",
]
