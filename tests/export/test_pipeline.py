"""One verified ONNX export from a config: export, parity, validation mAP, speed, its record."""

from pathlib import Path

import pytest
import torch

from reid_platform.config import config_hash
from reid_platform.config.loading import load_config
from reid_platform.export import (
    ExportError,
    LabeledImages,
    export_verified_onnx,
    file_sha256,
    verify_artifact,
)
from reid_platform.modeling import build_model

OVERRIDES = [
    "input.size_test=[64,32]",
    "model.backbone.ibn=true",
    "model.pooling.kind=gem",
    "model.pooling.gem.learnable=true",
    "export.throughput_batch=4",
]


def test_quickstart_config_exports_verified_with_a_record(
    tmp_path: Path, query_gallery: tuple[LabeledImages, LabeledImages]
) -> None:
    config = load_config("experiments/quickstart.yaml", OVERRIDES)
    torch.manual_seed(0)
    model = build_model(config.model, config.input, num_classes=8)
    verified = export_verified_onnx(
        model, config, tmp_path / "export", query=query_gallery[0], gallery=query_gallery[1],
        source_checkpoint="checkpoints/model.pt",
    )  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["model.onnx"]
    manifest = verified.manifest
    verify_artifact(manifest, tmp_path / "export" / manifest.artifact)
    assert manifest.sha256 == file_sha256(verified.export.path)
    assert manifest.config_hash == config_hash(config)
    assert manifest.source_checkpoint == "checkpoints/model.pt"
    assert manifest.parity is not None and manifest.parity.max_abs_diff <= 1e-4
    assert manifest.validation_map is not None
    assert abs(manifest.validation_map.difference) <= 1e-6
    assert manifest.speed is not None and manifest.speed.exported.batch == 4


def test_parity_beyond_the_configured_tolerance_is_an_error(
    tmp_path: Path, query_gallery: tuple[LabeledImages, LabeledImages]
) -> None:
    config = load_config(
        "experiments/quickstart.yaml", [*OVERRIDES, "export.parity_tolerance=1e-12"]
    )
    torch.manual_seed(0)
    model = build_model(config.model, config.input, num_classes=8)
    with pytest.raises(ExportError, match=r"differs from PyTorch by up to .* \(more than 1e-12\)"):
        export_verified_onnx(
            model, config, tmp_path, query=query_gallery[0], gallery=query_gallery[1],
            measure=False, measure_map=False,
        )  # fmt: skip
