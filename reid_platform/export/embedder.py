"""The exported module: a re-id model reduced to `images → embeddings`, and its input contract.

The embedding is the one the evaluator uses: `model(images).embedding` in eval mode (the
baseline's `neck.embedding` choice, MGN's concatenated heads), without flip TTA. Mean/std
normalisation is *inside* the model (`InputNormalization`, 0-255 scale, built from the config's
`input` section through `model.preprocessing`); the data transforms only resize. So the graph
input is the raw resized image: NCHW, RGB, float32 in [0, 255], which its name says.
"""

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.functional import normalize

from reid_platform.modeling.output import Preprocessing

INPUT_NAME = "images_rgb_0_255"
"""Graph input: (batch, 3, H, W) float32 RGB in 0-255, not mean/std-normalised (the graph is)."""

OUTPUT_NAME = "embeddings"
"""Graph output: (batch, D) float32 embeddings, L2-normalised when the export says so."""

ComputeDtype = Literal["fp32", "fp16"]
TORCH_DTYPES: dict[ComputeDtype, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass(frozen=True, slots=True)
class InputContract:
    """What a caller feeds the exported model; stated in the manifest and the ONNX metadata.

    Images are RGB, resized to (height, width) with `interpolation`, laid out NCHW as float32
    in `value_range`; `mean` and `std` (same 0-255 scale) are applied inside the graph
    (`normalization_in_graph`), so callers never normalise.
    """

    name: str
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    layout: Literal["NCHW"] = "NCHW"
    channel_order: Literal["RGB"] = "RGB"
    dtype: Literal["float32"] = "float32"
    value_range: tuple[float, float] = (0.0, 255.0)
    normalization_in_graph: bool = True

    @property
    def shape(self) -> tuple[str | int, ...]:
        """("batch", 3, H, W): the batch dimension is dynamic."""
        return ("batch", 3, self.height, self.width)


def input_contract(model: nn.Module) -> InputContract:
    """The contract of `model`, read from the `preprocessing` every re-id model carries."""
    preprocessing = getattr(model, "preprocessing", None)
    if not isinstance(preprocessing, Preprocessing):
        raise TypeError(f"{type(model).__name__} carries no `preprocessing`; it cannot be exported")
    height, width = preprocessing.input_size
    return InputContract(
        name=INPUT_NAME,
        height=height,
        width=width,
        mean=preprocessing.mean,
        std=preprocessing.std,
        interpolation=preprocessing.interpolation,
        value_range=preprocessing.value_range,
    )


def embedding_dim(model: nn.Module) -> int:
    """Width D of the model's retrieval embedding."""
    dim = getattr(model, "embedding_dim", None)
    if not isinstance(dim, int):
        raise TypeError(f"{type(model).__name__} declares no integer `embedding_dim`")
    return dim


class ExportedEmbedder(nn.Module):
    """(B, 3, H, W) float32 RGB 0-255 → (B, D) float32 embeddings, L2-normalised if `normalize`.

    Wraps a re-id model (used in eval mode; build it with `eval_copy`). With `compute_dtype`
    fp16 the model's weights must already be half: the input is cast on entry and the
    embedding back to float32, so the graph's I/O stays float32 whatever runs inside.
    """

    def __init__(
        self, model: nn.Module, *, normalize: bool, compute_dtype: ComputeDtype = "fp32"
    ) -> None:
        super().__init__()
        self.model = model
        self.normalize = normalize
        self.compute_dtype = TORCH_DTYPES[compute_dtype]

    # The argument's name is the graph input's name (the exporter keys dynamic shapes by it).
    def forward(self, images_rgb_0_255: Tensor) -> Tensor:
        embedding: Tensor = self.model(images_rgb_0_255.to(self.compute_dtype)).embedding
        embedding = embedding.float()
        return normalize(embedding, dim=1) if self.normalize else embedding


def eval_copy(model: nn.Module, compute_dtype: ComputeDtype = "fp32") -> nn.Module:
    """A deep copy of `model` in eval mode (in half precision for fp16); `model` is untouched."""
    copied = copy.deepcopy(model).eval()
    return copied.half() if compute_dtype == "fp16" else copied


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode inside the block; every module's own train/eval flag restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
