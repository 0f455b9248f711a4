"""`reid export --run` and `reid fetch` end to end: a finished run in a real sqlite MLflow store,
a real tiny model, real onnxruntime. One export (registered as `reid-net@champion`) is shared by
the module; the tests that change a run's exports work on a second run.
"""

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from mlflow.tracking import MlflowClient

from reid_platform.cli.main import main
from reid_platform.config import ReidConfig, load_config
from reid_platform.export.embedder import INPUT_NAME
from reid_platform.export.manifest import file_sha256, read_manifest_file
from reid_platform.export.trt_availability import tensorrt_unavailable_reason
from reid_platform.metric_names import EXPORT_IMAGES_PER_SEC, EXPORT_LATENCY_MS
from reid_platform.modeling.build import build_model
from reid_platform.modeling.model_file import load_model_file, save_model_file
from reid_platform.tracking.artifacts import log_final_artifacts
from reid_platform.tracking.export_runs import log_export_folder
from reid_platform.tracking.runs import finish_run, open_training_run

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments/quickstart.yaml"
TINY = [
    "data.train.0.synthetic.ids=12",
    "data.test.0.synthetic.ids=12",
    "data.train.0.synthetic.images_per_id=6",
    "data.test.0.synthetic.images_per_id=6",
    "data.validation.num_ids=2",
    "data.loader.num_workers=0",
    "input.size_test=[64,32]",
    "input.size_train=[64,32]",
    "export.throughput_batch=2",
    "export.validation_images=16",
]


@dataclass(frozen=True)
class Setup:
    """The store, the finished run, its model file, and what the shared export printed."""

    uri: str
    run_id: str
    root: Path
    model_file: Path
    export_status: int
    export_output: str


def finished_run(uri: str, config: ReidConfig, name: str, checkpoint: Path) -> str:
    """A run as training leaves it: opened by name, final checkpoint logged, FINISHED."""
    tracked = open_training_run(
        tracking_uri=uri, experiment="exports", run_name=name, config=config
    )
    log_final_artifacts(uri, tracked.run_id, checkpoint)
    finish_run(uri, tracked.run_id, "FINISHED")
    return tracked.run_id


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("export_cli")
    overrides = [*TINY, f"data.train.0.root={root / 'synth'}", f"data.test.0.root={root / 'synth'}"]
    config = load_config(QUICKSTART, overrides)
    torch.manual_seed(0)
    model = build_model(config.model, config.input, num_classes=10).eval()
    model_file = save_model_file(
        model, config=config, num_classes=10, source={"format": "train"}, out=root / "ckpt/model.pt"
    )
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # MLflow puts a new experiment's artifacts under ./mlruns
        run_id = finished_run(uri, config, "tiny", root / "ckpt")
        argv = ["export", "--run", run_id, "--format", "onnx", "--tracking-uri", uri]
        status, output = run_cli([*argv, "--register", "reid-net", "--alias", "champion"])
        yield Setup(uri, run_id, root, model_file, status, output)


def test_export_logs_a_verified_onnx_model_with_tags_and_metrics(
    setup: Setup, tmp_path: Path
) -> None:
    assert setup.export_status == 0
    client = MlflowClient(setup.uri)
    files = {entry.path for entry in client.list_artifacts(setup.run_id, "export")}
    # export/versions/ holds the registered version's own copy.
    assert files == {"export/model.onnx", "export/manifest.json", "export/versions"}
    client.download_artifacts(setup.run_id, "export", str(tmp_path))
    manifest = read_manifest_file(tmp_path / "export")
    entry = manifest.find("onnx", "fp32")
    assert entry.sha256 == file_sha256(tmp_path / "export/model.onnx")
    assert entry.source_checkpoint == "checkpoints/model.pt" and not manifest.failures
    run = client.get_run(setup.run_id)
    assert run.data.tags["reid.export.onnx"] == "exported fp32"
    assert entry.speed is not None
    assert run.data.metrics[EXPORT_LATENCY_MS] == pytest.approx(entry.speed.exported.latency_ms)
    assert run.data.metrics[EXPORT_IMAGES_PER_SEC] == pytest.approx(entry.speed.exported.throughput)
    # The logged model computes the run's model: onnxruntime against eager PyTorch here.
    loaded = load_model_file(setup.model_file)
    images = torch.rand((3, 3, 64, 32), generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(loaded.model(images).embedding).numpy()
    session = onnxruntime.InferenceSession(str(tmp_path / "export/model.onnx"))
    (got,) = session.run(None, {INPUT_NAME: images.numpy()})
    assert np.abs(got - expected).max() <= 1e-4
    assert entry.parity is not None and entry.parity.max_abs_diff <= 1e-4
    assert entry.validation_map is not None
    assert "model.onnx" in setup.export_output
    assert "reid-net version 1, aliases champion" in setup.export_output


def test_export_registers_a_version_with_its_alias(setup: Setup) -> None:
    client = MlflowClient(setup.uri)
    version = client.get_model_version_by_alias("reid-net", "champion")
    assert version.run_id == setup.run_id and int(version.version) == 1
    assert version.tags["reid.format"] == "onnx" and version.tags["reid.precision"] == "fp32"


def test_fetch_by_run_and_by_alias_give_the_same_verified_file(
    setup: Setup, tmp_path: Path
) -> None:
    common = ["--format", "onnx", "--tracking-uri", setup.uri]
    by_run, by_alias = tmp_path / "d1", tmp_path / "d2"
    status, output = run_cli(["fetch", setup.run_id, *common, "--out", str(by_run)])
    assert status == 0 and "sha256 verified" in output
    status, output = run_cli(
        ["fetch", "models:/reid-net@champion", *common, "--out", str(by_alias)]
    )
    assert status == 0 and "sha256 verified" in output
    for folder in (by_run, by_alias):
        assert sorted(path.name for path in folder.iterdir()) == ["manifest.json", "model.onnx"]
        (entry,) = read_manifest_file(folder).exports
        assert file_sha256(folder / "model.onnx") == entry.sha256
    assert (by_run / "model.onnx").read_bytes() == (by_alias / "model.onnx").read_bytes()
    registered = MlflowClient(setup.uri).get_model_version("reid-net", "1").tags["reid.sha256"]
    assert file_sha256(by_alias / "model.onnx") == registered


def test_bad_sources_are_one_sentence(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = ["--tracking-uri", setup.uri]
    out = ["--format", "onnx", "--out", str(tmp_path / "out"), *uri]
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    export = ("export", "--run", setup.run_id, "--format", "onnx", *uri)
    tags_before = MlflowClient(setup.uri).get_run(setup.run_id).data.tags
    cases = {
        (*export, "--precision", "int8"): "int8 applies to TensorRT engines only",
        (*export, "--register", "reid-net", "--alias", "v1"): "alias 'v1' is reserved",
        (*export, "--register", "reid-net", "--alias", "Latest"): "alias 'Latest' is reserved",
        ("fetch", setup.run_id, "--format", "onnx", "--out", str(a_file), *uri): (
            f"cannot write to {a_file}:"
        ),
        ("export", "--run", "feedbeef", "--format", "onnx", *uri): "run 'feedbeef' is not in",
        ("fetch", "feedbeef", *out): "run 'feedbeef' is not in",
        ("fetch", "models:/reid-net@nope", *out): "registered model 'reid-net' has no alias 'nope'",
        ("fetch", "models:/nobody@champion", *out): "registered model 'nobody' is not in",
        ("fetch", "models:/reid-net@champion", "--precision", "fp16", *out): (
            "is the onnx fp32 export, not onnx fp16"
        ),
    }
    for argv, sentence in cases.items():
        capsys.readouterr()
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert sentence in " ".join(err.split()) and "Traceback" not in err
    assert main(["export", "--run", setup.run_id, "--format", "onnx", "--alias", "x", *uri]) == 2
    assert "--alias needs --register" in capsys.readouterr().err
    # Refused before any work: no tag changed, no version created, the file left alone.
    client = MlflowClient(setup.uri)
    assert client.get_run(setup.run_id).data.tags == tags_before
    assert [v.version for v in client.search_model_versions("name='reid-net'")] == [1]
    assert a_file.read_text() == "not a folder"


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT can run here")
def test_tensorrt_without_tensorrt_is_one_sentence_and_tags_the_run(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = tensorrt_unavailable_reason()
    assert reason is not None
    argv = ["export", "--run", setup.run_id, "--format", "tensorrt", "--tracking-uri", setup.uri]
    assert main(argv) == 2
    assert " ".join(reason.split()) in " ".join(capsys.readouterr().err.split())
    tags = MlflowClient(setup.uri).get_run(setup.run_id).data.tags
    assert tags["reid.export.tensorrt"] == f"skipped: {reason}"


def test_reexport_merges_and_a_replaced_artifact_fails_fetch(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A second run of the same checkpoint, holding the shared run's fp32 export.
    config = load_model_file(setup.model_file).config
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(setup.root)
        run_id = finished_run(setup.uri, config, "tiny-2", setup.model_file.parent)
    MlflowClient(setup.uri).download_artifacts(setup.run_id, "export", str(tmp_path))
    log_export_folder(setup.uri, run_id, tmp_path / "export")

    argv = ["export", "--run", run_id, "--format", "onnx", "--tracking-uri", setup.uri]
    status, output = run_cli([*argv, "--precision", "fp16"])
    assert status == 0 and "model.fp16.onnx" in output
    client = MlflowClient(setup.uri)
    manifest = read_manifest_file(
        Path(client.download_artifacts(run_id, "export/manifest.json", str(tmp_path)))
    )
    assert [(e.precision, e.artifact) for e in manifest.exports] == [
        ("fp32", "model.onnx"),
        ("fp16", "model.fp16.onnx"),
    ]
    assert client.get_run(run_id).data.tags["reid.export.onnx"] == "exported fp32, fp16"
    # The run's latency stays that of its config's format and precision (onnx fp32).
    fp32_speed = manifest.find("onnx", "fp32").speed
    assert fp32_speed is not None
    assert client.get_run(run_id).data.metrics[EXPORT_LATENCY_MS] == pytest.approx(
        fp32_speed.exported.latency_ms
    )

    tampered = tmp_path / "tamper/model.fp16.onnx"
    tampered.parent.mkdir()
    tampered.write_bytes(b"not an onnx model")
    client.log_artifact(run_id, str(tampered), "export")
    out = tmp_path / "out"
    fetch = ["fetch", run_id, "--format", "onnx", "--precision", "fp16", "--out", str(out)]
    capsys.readouterr()
    assert main([*fetch, "--tracking-uri", setup.uri]) == 2
    err = " ".join(capsys.readouterr().err.split())
    recorded = manifest.find("onnx", "fp16").sha256
    assert "export/model.fp16.onnx" in err and recorded[:12] in err
    assert file_sha256(tampered)[:12] in err
    assert not (out / "model.fp16.onnx").exists() and not list(out.glob("*.onnx"))
