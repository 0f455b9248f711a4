"""Export: ONNX (dynamo exporter, onnxruntime parity, validation mAP, speed), TensorRT engines
(TensorRT 10 and 11, built and run with its Python API) and the export manifest.

    verified = export_verified_onnx(model, config, out_dir, query=query, gallery=gallery)

or step by step:

    exported = export_onnx(model, config.export, out_dir / "model.onnx")
    parity = verify_onnx(exported, model, validation_images)          # batch sizes 1 and 7
    evaluator = build_evaluator(config.evaluation)
    maps = validation_map(OnnxRuntimeEmbedder(exported.path), model, query, gallery,
                          evaluator=evaluator, normalized=exported.normalized)
    speed = measure_speed(model, exported, throughput_batch=config.export.throughput_batch)
    write_manifest(onnx_manifest(exported, parity=parity, validation_map=maps, speed=speed,
                                 config_hash=config_hash(config)), out_dir)

The core of the platform: no Ray, no MLflow (logging the files is `tracking/`'s job). TensorRT
is imported only when an engine is built or run; `tensorrt_unavailable_reason()` says in one
sentence what is missing on a machine without it or without a GPU.
"""

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
    ExportManifest,
    file_sha256,
    onnx_manifest,
    read_manifest,
    tensorrt_manifest,
    verify_artifact,
    write_manifest,
)
from reid_platform.export.onnx_export import OnnxExport, export_onnx, read_export_metadata
from reid_platform.export.onnx_runtime import OnnxRuntimeEmbedder
from reid_platform.export.parity import ParityReport, check_parity, pytorch_embeddings, verify_onnx
from reid_platform.export.pipeline import VerifiedExport, export_verified_onnx
from reid_platform.export.speed import BackendSpeed, SpeedReport, measure_backends, measure_speed
from reid_platform.export.trt_availability import tensorrt_unavailable_reason
from reid_platform.export.trt_build import BatchProfile, EngineBuild, build_engine
from reid_platform.export.trt_run import (
    TensorRTEmbedder,
    measure_tensorrt_speed,
    run_engine,
    verify_engine,
)
from reid_platform.export.validation_map import LabeledImages, MapComparison, validation_map

__all__ = [
    "INPUT_NAME",
    "MANIFEST_NAME",
    "OUTPUT_NAME",
    "BackendSpeed",
    "BatchProfile",
    "EngineBuild",
    "ExportError",
    "ExportManifest",
    "ExportedEmbedder",
    "InputContract",
    "LabeledImages",
    "MapComparison",
    "OnnxExport",
    "OnnxRuntimeEmbedder",
    "ParityReport",
    "SpeedReport",
    "TensorRTEmbedder",
    "VerifiedExport",
    "build_engine",
    "check_parity",
    "export_onnx",
    "export_verified_onnx",
    "file_sha256",
    "input_contract",
    "measure_backends",
    "measure_speed",
    "measure_tensorrt_speed",
    "onnx_manifest",
    "pytorch_embeddings",
    "read_export_metadata",
    "read_manifest",
    "run_engine",
    "tensorrt_manifest",
    "tensorrt_unavailable_reason",
    "validation_map",
    "verify_artifact",
    "verify_engine",
    "verify_onnx",
    "write_manifest",
]
