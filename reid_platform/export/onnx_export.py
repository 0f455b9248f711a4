"""Model → one self-contained ONNX file: dynamo exporter, dynamic batch, fixed opset.

The graph is `ExportedEmbedder`: input `images_rgb_0_255` (batch, 3, H, W) float32, output
`embeddings` (batch, D) float32. The weights live inside the file (`external_data=False`, fine
below protobuf's 2 GB), so logging or fetching it is one file. The input contract and the
export settings are also written into the model's `metadata_props`, so a fetched `.onnx`
describes itself. `onnx.checker` runs on the result.
"""

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from reid_platform.config.export import ExportConfig
from reid_platform.export.embedder import (
    INPUT_NAME,
    OUTPUT_NAME,
    ComputeDtype,
    ExportedEmbedder,
    InputContract,
    embedding_dim,
    eval_copy,
    eval_mode,
    input_contract,
)
from reid_platform.export.errors import ExportError

logger = logging.getLogger(__name__)

METADATA_KEY = "reid.export"
"""`metadata_props` key of the JSON export description inside the ONNX file."""

EXAMPLE_BATCH = 2
"""Tracing batch: not 1, which the exporter could specialise as a constant."""


@dataclass(frozen=True, slots=True)
class OnnxExport:
    """An exported ONNX file and what it computes.

    path: the single `.onnx` file. input: the preprocessing contract of `input_name`.
    embedding_dim: D of the `embeddings` (batch, D) output; normalized: rows L2-normalised.
    precision: fp32, or fp16 weights and compute with float32 I/O (for TensorRT 11).
    """

    path: Path
    input: InputContract
    output_name: str
    embedding_dim: int
    normalized: bool
    opset: int
    precision: ComputeDtype
    seconds: float


def export_onnx(
    model: nn.Module,
    config: ExportConfig,
    out_path: Path,
    *,
    precision: ComputeDtype = "fp32",
) -> OnnxExport:
    """Export `model`'s eval-mode embedder to `out_path` at opset `config.opset`.

    model: a re-id model (`ReidBaselineModel`, MGN; unwrap DDP's `.module` first) on any device;
        it is not modified (fp16 exports a half-precision copy).
    config: `normalize_output` adds the L2 normalisation to the graph; `opset` is fixed.
    Raises `ExportError` when the exporter fails or the result does not check.
    """
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise ExportError(f"the ONNX output path {out_path} must end in .onnx")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    contract = input_contract(model)
    dim = embedding_dim(model)
    started = time.perf_counter()
    if precision == "fp32":
        with eval_mode(model):
            _trace(
                ExportedEmbedder(model, normalize=config.normalize_output),
                contract,
                config,
                out_path,
            )
    else:
        half = eval_copy(model, precision)
        embedder = ExportedEmbedder(
            half, normalize=config.normalize_output, compute_dtype=precision
        )
        _trace(embedder, contract, config, out_path)
    exported = OnnxExport(
        path=out_path,
        input=contract,
        output_name=OUTPUT_NAME,
        embedding_dim=dim,
        normalized=config.normalize_output,
        opset=config.opset,
        precision=precision,
        seconds=time.perf_counter() - started,
    )
    _stamp_and_check(exported)
    logger.info(
        "exported %s (%s, opset %d) in %.1f s", out_path, precision, config.opset, exported.seconds
    )
    return exported


def _trace(
    embedder: ExportedEmbedder, contract: InputContract, config: ExportConfig, out_path: Path
) -> None:
    device = next(embedder.parameters()).device
    example = torch.rand(EXAMPLE_BATCH, 3, contract.height, contract.width, device=device) * 255
    batch = torch.export.Dim("batch", min=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes go to its report, not ours
            torch.onnx.export(
                embedder,
                (example,),
                str(out_path),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={INPUT_NAME: {0: batch}},
                opset_version=config.opset,
                external_data=False,
                optimize=True,
                verify=False,
                report=False,
                verbose=False,
            )
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ExportError(
            f"ONNX export of {type(embedder.model).__name__} failed: "
            f"{type(error).__name__}: {first_line}"
        ) from error


def _stamp_and_check(exported: OnnxExport) -> None:
    """Write the description into `metadata_props`, then check file, names and dynamic batch."""
    if list(exported.path.parent.glob(f"{exported.path.name}.data")):
        raise ExportError(f"the export wrote external data beside {exported.path}")
    proto = onnx.load(str(exported.path))
    description = {
        "input": asdict(exported.input),
        "output": {"name": exported.output_name, "embedding_dim": exported.embedding_dim},
        "normalized": exported.normalized,
        "precision": exported.precision,
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(description, sort_keys=True)
    onnx.save(proto, str(exported.path))
    try:
        onnx.checker.check_model(str(exported.path))
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the exported {exported.path} fails onnx.checker: {error}") from error
    _check_signature(proto, exported)


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    dims = value.type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") else int(d.dim_value) for d in dims]


def _check_signature(proto: onnx.ModelProto, exported: OnnxExport) -> None:
    inputs = [value for value in proto.graph.input]
    outputs = [value for value in proto.graph.output]
    if [value.name for value in inputs] != [INPUT_NAME] or [v.name for v in outputs] != [
        OUTPUT_NAME
    ]:
        raise ExportError(
            f"the exported graph has inputs {[v.name for v in inputs]} and outputs "
            f"{[v.name for v in outputs]}, expected [{INPUT_NAME!r}] and [{OUTPUT_NAME!r}]"
        )
    input_dims, output_dims = _dims(inputs[0]), _dims(outputs[0])
    contract = exported.input
    if not isinstance(input_dims[0], str) or input_dims[1:] != [3, contract.height, contract.width]:
        raise ExportError(f"the exported input has shape {input_dims}, expected {contract.shape}")
    if not isinstance(output_dims[0], str) or output_dims[1:] != [exported.embedding_dim]:
        raise ExportError(
            f"the exported output has shape {output_dims}, "
            f"expected (batch, {exported.embedding_dim})"
        )


def read_export_metadata(path: Path) -> dict[str, object]:
    """The export description stamped into an ONNX file by `export_onnx` (empty if none)."""
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            loaded: dict[str, object] = json.loads(entry.value)
            return loaded
    return {}
