"""onnxruntime inference of an exported embedder (CPU by default)."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import Tensor

from reid_platform.export.errors import ExportError


def as_float32_images(images: Tensor | np.ndarray) -> np.ndarray:
    """(B, 3, H, W) images (tensor on any device, or array) → contiguous float32 host array."""
    if isinstance(images, Tensor):
        images = images.detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(images, dtype=np.float32)


class OnnxRuntimeEmbedder:
    """An ONNX embedder in an onnxruntime session.

    `embedder(images)`: (B, 3, H, W) float32 0-255 → (B, D) float32, one session run.
    `threads` sets onnxruntime's intra-op threads (None: its default, one per physical core).
    """

    def __init__(
        self,
        path: Path,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=list(providers)
            )
        except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidGraph
            raise ExportError(f"onnxruntime cannot load {path}: {error}") from error
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ExportError(
                f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; "
                "an embedder has one of each"
            )
        self.input_name: str = inputs[0].name
        self.output_name: str = outputs[0].name

    def __call__(self, images: Tensor | np.ndarray) -> np.ndarray:
        feed = {self.input_name: as_float32_images(images)}
        (embeddings,) = self.session.run([self.output_name], feed)
        return np.asarray(embeddings, dtype=np.float32)
