"""Shared pieces of the modeling tests: a tiny ResNet-shaped backbone and an ONNX round trip."""

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import Tensor, nn

OnnxCheck = Callable[..., None]


class _Block(nn.Module):
    """conv-bn-relu-conv-bn with a projection shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class TinyResNet(nn.Module):
    """ResNet-shaped (conv1, bn1, relu, maxpool, layer1..4; total stride 16 with last stride 1)
    with `width`·8 output channels and the `StagedBackbone` views: a stand-in for the real
    backbones in unit tests."""

    def __init__(self, *, width: int = 4, last_stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(_Block(width, width, 1))
        self.layer2 = nn.Sequential(_Block(width, 2 * width, 2))
        self.layer3 = nn.Sequential(
            _Block(2 * width, 4 * width, 2), _Block(4 * width, 4 * width, 1)
        )
        self.layer4 = nn.Sequential(_Block(4 * width, 8 * width, last_stride))
        self.stage_channels = (width, 2 * width, 4 * width, 8 * width)
        self.out_channels = 8 * width

    def stem(self) -> nn.Sequential:
        return nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)

    def stage(self, index: int) -> nn.Sequential:
        stage: nn.Sequential = getattr(self, f"layer{index}")
        return stage

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@pytest.fixture
def tiny_backbone() -> Callable[..., TinyResNet]:
    """`tiny_backbone(width=4, last_stride=1)` → a fresh seeded `TinyResNet`."""

    def make(*, width: int = 4, last_stride: int = 1) -> TinyResNet:
        torch.manual_seed(0)
        return TinyResNet(width=width, last_stride=last_stride)

    return make


@pytest.fixture
def require_backbones() -> None:
    """Skips the test until the backbone stage (`modeling/backbones/build.py`) exists."""
    pytest.importorskip("reid_platform.modeling.backbones.build")


@pytest.fixture
def onnx_matches(tmp_path: Path) -> OnnxCheck:
    """`onnx_matches(module, make_inputs, names, batches=(2, 5))`: export `module` (eval) to one
    ONNX file with a dynamic batch on every input (named `names`), then compare onnxruntime with
    PyTorch within 1e-4 at each of `batches`. `make_inputs(batch)` gives the forward arguments."""

    def check(
        module: nn.Module,
        make_inputs: Callable[[int], Sequence[Tensor]],
        names: Sequence[str],
        batches: Sequence[int] = (2, 5),
    ) -> None:
        module = module.eval()
        batch = torch.export.Dim("batch", min=1, max=64)
        path = tmp_path / "module.onnx"
        with warnings.catch_warnings():
            # Inputs sharing the batch dimension share its name; the exporter says so.
            warnings.filterwarnings("ignore", message="# The axis name")
            torch.onnx.export(
                module,
                tuple(make_inputs(3)),
                str(path),
                dynamo=True,
                input_names=list(names),
                dynamic_shapes=tuple({0: batch} for _ in names),
                external_data=False,
                verify=False,
                report=False,
            )
        onnx.checker.check_model(onnx.load(str(path)))
        assert not list(tmp_path.glob("*.data")), "the export must be a single file"
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for size in batches:
            inputs = make_inputs(size)
            with torch.no_grad():
                expected = module(*inputs)
            expected_list = list(expected) if isinstance(expected, tuple) else [expected]
            feed = {name: t.numpy() for name, t in zip(names, inputs, strict=True)}
            got = session.run(None, feed)
            assert len(got) == len(expected_list)
            for value, reference in zip(got, expected_list, strict=True):
                assert value.shape == tuple(reference.shape)
                np.testing.assert_allclose(value, reference.numpy(), rtol=1e-4, atol=1e-4)

    return check
