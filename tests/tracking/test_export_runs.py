"""An export folder logged into a real sqlite MLflow run under `export/`, merged, and fetched."""

import dataclasses
import shutil
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from reid_platform.config.export import ExportConfig
from reid_platform.errors import ReidError
from reid_platform.export.manifest import (
    ExportFailure,
    ManifestFile,
    file_sha256,
    read_manifest_file,
    write_manifest_file,
)
from reid_platform.metric_names import EXPORT_IMAGES_PER_SEC, EXPORT_LATENCY_MS
from reid_platform.tracking.export_runs import download_export, export_tags, log_export_folder
from reid_platform.tracking.layout import EXPORT_MANIFEST
from reid_platform.tracking.run_artifacts import download_run_artifact
from reid_platform.tracking.runs import experiment_id_for


def new_run(uri: str) -> str:
    client = MlflowClient(uri)
    return client.create_run(experiment_id_for(client, "exports")).info.run_id


def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def fp16_folder(export_folder: Path, target: Path) -> Path:
    """A folder holding an onnx fp16 record (bytes of its own) and an onnx fp32 failure."""
    target.mkdir()
    fp32 = read_manifest_file(export_folder).find("onnx", "fp32")
    artifact = target / "model.fp16.onnx"
    artifact.write_bytes((export_folder / fp32.artifact).read_bytes() + b"fp16")
    fp16 = dataclasses.replace(
        fp32, precision="fp16", artifact=artifact.name, sha256=file_sha256(artifact)
    )
    failure = ExportFailure("onnx", "fp32", "failed", "the ONNX export differs from PyTorch")
    write_manifest_file(ManifestFile(exports=(fp16,), failures=(failure,)), target)
    return target


ONNX_FP32 = ExportConfig(formats=("onnx",), precision="fp32")
"""The export config of the runs here: their latency is the onnx fp32 one (decision 3)."""


def run_files(uri: str, run_id: str) -> set[str]:
    return {entry.path for entry in MlflowClient(uri).list_artifacts(run_id, "export")}


def test_logged_folder_lands_under_export_with_tags_and_speed_metrics(
    sqlite_uri: str, export_folder: Path, tmp_path: Path
) -> None:
    run_id = new_run(sqlite_uri)
    merged = log_export_folder(sqlite_uri, run_id, export_folder, run_export_config=ONNX_FP32)
    local = read_manifest_file(export_folder)
    assert merged == local
    assert run_files(sqlite_uri, run_id) == {"export/model.onnx", "export/manifest.json"}
    logged = download_run_artifact(run_id, EXPORT_MANIFEST, sqlite_uri, tmp_path / "d")
    assert read_manifest_file(logged) == local
    onnx = download_run_artifact(run_id, "export/model.onnx", sqlite_uri, tmp_path / "d")
    assert file_sha256(onnx) == local.find("onnx").sha256
    run = MlflowClient(sqlite_uri).get_run(run_id)
    assert run.data.tags["reid.export.onnx"] == "exported fp32"
    skipped = run.data.tags["reid.export.tensorrt"]
    assert skipped.startswith("skipped: TensorRT export needs")
    speed = local.find("onnx").speed
    assert speed is not None
    assert run.data.metrics[EXPORT_LATENCY_MS] == pytest.approx(speed.exported.latency_ms)
    assert run.data.metrics[EXPORT_IMAGES_PER_SEC] == pytest.approx(speed.exported.throughput)


def test_a_second_folder_merges_into_the_runs_manifest(
    sqlite_uri: str, export_folder: Path, tmp_path: Path
) -> None:
    run_id = new_run(sqlite_uri)
    log_export_folder(sqlite_uri, run_id, export_folder)
    merged = log_export_folder(sqlite_uri, run_id, fp16_folder(export_folder, tmp_path / "fp16"))
    logged = read_manifest_file(
        download_run_artifact(run_id, EXPORT_MANIFEST, sqlite_uri, tmp_path / "d")
    )
    assert logged == merged
    # fp32 stays (a failed re-export keeps the valid artifact), fp16 is added.
    assert [(e.format, e.precision) for e in logged.exports] == [("onnx", "fp32"), ("onnx", "fp16")]
    assert [(f.format, f.precision, f.status) for f in logged.failures] == [
        ("tensorrt", "fp32", "skipped"),
        ("onnx", "fp32", "failed"),
    ]
    assert run_files(sqlite_uri, run_id) == {
        "export/model.onnx",
        "export/model.fp16.onnx",
        "export/manifest.json",
    }
    # The tag says what the run holds: both artifacts, and fp32's failure is no loss.
    assert MlflowClient(sqlite_uri).get_run(run_id).data.tags["reid.export.onnx"] == (
        "exported fp32, fp16"
    )


def test_tags_describe_what_the_run_holds(export_folder: Path) -> None:
    fp32 = read_manifest_file(export_folder).find("onnx")
    fp16 = dataclasses.replace(fp32, precision="fp16", artifact="model.fp16.onnx")
    engine = dataclasses.replace(
        fp32, format="tensorrt", precision="fp16", artifact=("model.fp16.engine")
    )
    failed = ExportFailure("onnx", "fp16", "failed", "parity")
    no_gpu = ExportFailure("tensorrt", "fp16", "skipped", "no GPU")
    no_int8 = ExportFailure("tensorrt", "int8", "failed", "calibration")
    cases = [
        (ManifestFile((fp32,), (failed,)), "onnx", "exported fp32; failed fp16: parity"),
        (ManifestFile((fp32, fp16), (failed,)), "onnx", "exported fp32, fp16"),
        (
            ManifestFile((engine,), (no_gpu, no_int8)),
            "tensorrt",
            "exported fp16; failed int8: calibration",
        ),
        (ManifestFile(failures=(no_gpu,)), "tensorrt", "skipped: no GPU"),
        (
            ManifestFile(failures=(no_gpu, no_int8)),
            "tensorrt",
            "skipped fp16: no GPU; failed int8: calibration",
        ),
    ]
    for manifest, format, tag in cases:
        assert export_tags(manifest) == {f"reid.export.{format}": tag}


def test_speed_metrics_become_the_runs_current_values(sqlite_uri: str, export_folder: Path) -> None:
    client = MlflowClient(sqlite_uri)
    run_id = new_run(sqlite_uri)
    # A training run's export reported with its final epoch (step 6).
    client.log_batch(run_id, metrics=[Metric(EXPORT_LATENCY_MS, 999.0, 1, 6)])
    log_export_folder(sqlite_uri, run_id, export_folder, run_export_config=ONNX_FP32)
    history = client.get_metric_history(run_id, EXPORT_LATENCY_MS)
    assert sorted(point.step for point in history) == [6, 6]
    speed = read_manifest_file(export_folder).find("onnx", "fp32").speed
    assert speed is not None
    metrics = client.get_run(run_id).data.metrics
    assert metrics[EXPORT_LATENCY_MS] == pytest.approx(speed.exported.latency_ms)
    assert metrics[EXPORT_IMAGES_PER_SEC] == pytest.approx(speed.exported.throughput)


def test_another_precision_never_changes_the_runs_speed_metrics(
    sqlite_uri: str, export_folder: Path, tmp_path: Path
) -> None:
    client = MlflowClient(sqlite_uri)
    run_id = new_run(sqlite_uri)
    log_export_folder(sqlite_uri, run_id, export_folder, run_export_config=ONNX_FP32)
    fp16 = fp16_folder(export_folder, tmp_path / "fp16")
    entry = read_manifest_file(fp16).find("onnx", "fp16")
    assert entry.speed is not None
    faster = dataclasses.replace(
        entry.speed,
        exported=dataclasses.replace(entry.speed.exported, latency_ms=0.001, throughput=1e6),
    )
    write_manifest_file(ManifestFile(exports=(dataclasses.replace(entry, speed=faster),)), fp16)
    log_export_folder(sqlite_uri, run_id, fp16, run_export_config=ONNX_FP32)
    speed = read_manifest_file(export_folder).find("onnx", "fp32").speed
    assert speed is not None
    # Still the onnx fp32 latency of the run's config, logged once (unchanged: not again).
    history = client.get_metric_history(run_id, EXPORT_LATENCY_MS)
    assert [point.value for point in history] == [pytest.approx(speed.exported.latency_ms)]
    assert client.get_run(run_id).data.metrics[EXPORT_IMAGES_PER_SEC] == pytest.approx(
        speed.exported.throughput
    )


def test_an_artifact_not_matching_its_manifest_is_never_uploaded(
    sqlite_uri: str, export_folder: Path, tmp_path: Path
) -> None:
    folder = copy_folder(export_folder, tmp_path / "copy")
    (folder / "model.onnx").write_bytes(b"not the exported model")
    run_id = new_run(sqlite_uri)
    with pytest.raises(ReidError, match="SHA-256"):
        log_export_folder(sqlite_uri, run_id, folder)
    assert run_files(sqlite_uri, run_id) == set()


def test_download_checks_the_hash_and_writes_a_one_entry_manifest(
    sqlite_uri: str, export_folder: Path, tmp_path: Path
) -> None:
    run_id = new_run(sqlite_uri)
    log_export_folder(sqlite_uri, run_id, export_folder)
    entry = read_manifest_file(export_folder).find("onnx")
    path, got = download_export(sqlite_uri, run_id, "onnx", None, tmp_path / "out")
    assert got == entry and path == tmp_path / "out/model.onnx"
    assert path.read_bytes() == (export_folder / "model.onnx").read_bytes()
    assert read_manifest_file(tmp_path / "out") == ManifestFile(exports=(entry,))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "model.onnx"]
    # A second fetch into the same folder adds its entry to the folder's manifest.
    log_export_folder(sqlite_uri, run_id, fp16_folder(export_folder, tmp_path / "fp16"))
    _, fp16 = download_export(sqlite_uri, run_id, "onnx", "fp16", tmp_path / "out")
    assert read_manifest_file(tmp_path / "out") == ManifestFile(exports=(entry, fp16))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "manifest.json",
        "model.fp16.onnx",
        "model.onnx",
    ]
    with pytest.raises(ReidError, match=r"^cannot write to .*model\.onnx: "):
        download_export(sqlite_uri, run_id, "onnx", "fp32", tmp_path / "out/model.onnx")

    with pytest.raises(ReidError, match="registered version records"):
        download_export(
            sqlite_uri, run_id, "onnx", "fp32", tmp_path / "reg", expected_sha256="0" * 64
        )
    with pytest.raises(ReidError, match=r"no tensorrt export .*skipped: TensorRT"):
        download_export(sqlite_uri, run_id, "tensorrt", None, tmp_path / "trt")
    with pytest.raises(ReidError, match="has no exports"):
        download_export(sqlite_uri, new_run(sqlite_uri), "onnx", None, tmp_path / "none")


def test_a_replaced_artifact_fails_the_download_and_leaves_nothing(
    sqlite_uri: str, export_folder: Path, tmp_path: Path
) -> None:
    run_id = new_run(sqlite_uri)
    log_export_folder(sqlite_uri, run_id, export_folder)
    tampered = tmp_path / "upload/model.onnx"
    tampered.parent.mkdir()
    tampered.write_bytes(b"something else")
    MlflowClient(sqlite_uri).log_artifact(run_id, str(tampered), "export")
    out = tmp_path / "out"
    recorded = read_manifest_file(export_folder).find("onnx").sha256
    with pytest.raises(ReidError) as caught:
        download_export(sqlite_uri, run_id, "onnx", None, out)
    message = str(caught.value)
    assert "export/model.onnx" in message
    assert file_sha256(tampered)[:12] in message and recorded[:12] in message
    assert list(out.iterdir()) == []
