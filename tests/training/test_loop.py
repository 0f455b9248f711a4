"""The training loop end to end on a tiny synthetic benchmark (CPU, a 0.4 M-parameter model)."""

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import reid_platform.metric_names as metric_names
import reid_platform.training.final_export as final_export_module
import reid_platform.training.loop as loop_module
import reid_platform.training.validation as validation_module
from reid_platform.config import ReidConfig, config_hash
from reid_platform.data.build import build_data
from reid_platform.export import (
    ExportFailure,
    OnnxRuntimeEmbedder,
    pytorch_embeddings,
    read_manifest_file,
    tensorrt_unavailable_reason,
)
from reid_platform.losses.build import build_loss
from reid_platform.losses.combined import ReidLoss
from reid_platform.modeling.build import build_model
from reid_platform.modeling.model_file import load_model_file
from reid_platform.training.errors import NonFiniteLossError
from reid_platform.training.final_export import export_final_model
from reid_platform.training.loop import (
    EpochEnd,
    IterationLog,
    TrainingHooks,
    TrainingOutcome,
    WorkerPlacement,
    train,
)

from .conftest import tiny_training_config

# One intra-op thread (the conftest's `one_thread`): the tiny model is faster so.
pytestmark = pytest.mark.usefixtures("one_thread")

# The training conftest's tiny benchmark, 3 epochs: evaluated at epochs 1 and 2 (and the end).
THREE_EPOCHS = [
    "solver.max_epochs=3",
    "solver.warmup.iters=4",
    "training.eval_period=2",
    "training.checkpoint_period=1",
]


def tiny_config(data_root: Path, *overrides: str) -> ReidConfig:
    """The quickstart recipe shrunk to seconds, reading (generating) data under `data_root`."""
    return tiny_training_config(data_root, *THREE_EPOCHS, *overrides)


class InterruptedRunError(Exception):
    """Raised by `RecordingHooks` to interrupt a run after a given epoch."""


@dataclass
class RecordingHooks(TrainingHooks):
    """Records every call in order; raises `InterruptedRunError` after `stop_after_epoch`'s end."""

    stop_after_epoch: int | None = None
    calls: list[IterationLog | EpochEnd] = field(default_factory=list)

    def on_iteration(self, log: IterationLog) -> None:
        self.calls.append(log)

    def on_epoch_end(self, end: EpochEnd) -> None:
        self.calls.append(end)
        if end.epoch == self.stop_after_epoch:
            raise InterruptedRunError(end.epoch)

    @property
    def epochs(self) -> list[EpochEnd]:
        return [call for call in self.calls if isinstance(call, EpochEnd)]

    @property
    def iterations(self) -> list[IterationLog]:
        return [call for call in self.calls if isinstance(call, IterationLog)]


@dataclass(frozen=True)
class Run:
    outcome: TrainingOutcome
    hooks: RecordingHooks
    work_dir: Path
    extracted: list[tuple[int, frozenset[str]]]  # (epochs ended so far, image paths) per loader


def run_training(
    config: ReidConfig,
    work_dir: Path,
    *,
    hooks: RecordingHooks | None = None,
    resume_from: Path | None = None,
) -> Run:
    """Train on rank 0 of 1, recording every evaluation loader the loop builds."""
    hooks = hooks or RecordingHooks()
    extracted: list[tuple[int, frozenset[str]]] = []
    build_test_loader = validation_module.build_test_loader

    def recording_loader(*args: Any) -> Any:
        records = args[2]
        extracted.append((len(hooks.epochs), frozenset(r.path for r in records)))
        return build_test_loader(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validation_module, "build_test_loader", recording_loader)
        outcome = train(
            config,
            placement=WorkerPlacement(),
            hooks=hooks,
            work_dir=work_dir,
            resume_from=resume_from,
        )
    return Run(outcome, hooks, work_dir, extracted)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loop") / "synthetic"


@pytest.fixture(scope="module")
def reference(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One uninterrupted 3-epoch run (evaluated at epochs 1 and 2, checkpoints every epoch)."""
    torch.set_num_threads(1)
    return run_training(tiny_config(data_root), tmp_path_factory.mktemp("reference"))


def train_losses(run: Run) -> dict[int, float]:
    return {end.epoch: end.metrics[metric_names.TRAIN_LOSS] for end in run.hooks.epochs}


def test_train_reports_in_order_and_writes_checkpoints_and_final_files(reference: Run) -> None:
    epochs = reference.hooks.epochs
    assert [(e.epoch, e.final) for e in epochs] == [(0, False), (1, False), (2, True)]
    folders = [reference.work_dir / f"checkpoints/epoch_{e:04d}" for e in range(3)]
    assert [e.checkpoint_dir for e in epochs] == folders
    # Progress logs every 2 iterations, each before the end of its own epoch.
    logs = reference.hooks.iterations
    iters = logs[0].iters_per_epoch
    assert [log.iteration for log in logs] == list(range(1, 3 * iters, 2))
    for log in logs:
        assert log.epoch == log.iteration // iters and log.max_epochs == 3
        assert set(log.losses) == {"loss", "cross_entropy", "triplet"}
        assert log.losses["loss"] == pytest.approx(
            log.losses["cross_entropy"] + log.losses["triplet"]
        )
        assert log.images_per_sec > 0 and log.eta_s >= 0
        end = reference.hooks.calls.index(epochs[log.epoch])
        assert reference.hooks.calls.index(log) < end
    # Train metrics every epoch; validation at epochs 1 (eval_period 2) and 2 (the last).
    train_names = {"train/loss", "train/loss_cross_entropy", "train/loss_triplet", "train/lr"}
    for end in epochs:
        assert train_names | {"train/images_per_sec"} <= set(end.metrics)
        assert (metric_names.MAP in end.metrics) == (end.epoch >= 1)
    for folder in folders:
        assert (folder / "state.pt").is_file() and (folder / "model.pt").is_file()
    final = folders[-1]
    assert reference.outcome.final_checkpoint_dir == final
    for name in ("roc/roc.png", "roc/roc.csv", "roc/distance_histogram.png"):
        assert (final / name).is_file()
    assert len(list((final / "ranklist").glob("*.png"))) == 2
    saved = json.loads((final / "metrics.json").read_text())
    assert saved == reference.outcome.validation_metrics | reference.outcome.test_metrics
    assert saved[metric_names.MAP] == epochs[-1].metrics[metric_names.MAP]
    loaded = load_model_file(final / "model.pt")
    assert loaded.source["format"] == "train" and loaded.source["epoch"] == 2


def test_validation_never_reads_the_test_split(reference: Run, data_root: Path) -> None:
    data = build_data(tiny_config(data_root).data)
    test_paths = {r.path for s in (data.test[0].query, data.test[0].gallery) for r in s.records}
    val_paths = {r.path for s in (data.val_query, data.val_gallery) for r in s.records}
    # Loaders while epochs 1 and 2 end: validation only; then, once, the test split.
    validation = [paths for ended, paths in reference.extracted if paths <= val_paths]
    testing = [(ended, paths) for ended, paths in reference.extracted if paths & test_paths]
    assert len(validation) == 4 and len(reference.extracted) == 6
    assert [ended for ended, _ in testing] == [2, 2]  # during the final epoch's end only
    assert all(paths <= test_paths for _, paths in testing)
    for end in reference.hooks.epochs:
        has_test = any(name.startswith("test/") for name in end.metrics)
        assert has_test == end.final
    assert reference.outcome.test_metrics[metric_names.test_metric(metric_names.MAP)] > 0


def test_same_seed_gives_identical_metrics(reference: Run, data_root: Path, tmp_path: Path) -> None:
    again = run_training(tiny_config(data_root), tmp_path)
    assert [e.metrics.keys() for e in again.hooks.epochs] == [
        e.metrics.keys() for e in reference.hooks.epochs
    ]
    assert train_losses(again) == train_losses(reference)
    assert again.outcome.validation_metrics == reference.outcome.validation_metrics
    assert again.outcome.test_metrics == reference.outcome.test_metrics


def test_resume_continues_the_interrupted_run(
    reference: Run, data_root: Path, tmp_path: Path
) -> None:
    config = tiny_config(data_root)
    with pytest.raises(InterruptedRunError):
        run_training(config, tmp_path / "first", hooks=RecordingHooks(stop_after_epoch=1))
    checkpoint = tmp_path / "first/checkpoints/epoch_0001"
    resumed = run_training(config, tmp_path / "second", resume_from=checkpoint)
    assert resumed.outcome.start_epoch == 2 and resumed.outcome.epochs_run == 1
    assert [e.epoch for e in resumed.hooks.epochs] == [2]
    assert resumed.hooks.iterations[0].iteration == reference.hooks.iterations[-1].iteration
    assert train_losses(resumed)[2] == pytest.approx(train_losses(reference)[2], abs=1e-6)
    assert resumed.outcome.test_metrics == pytest.approx(reference.outcome.test_metrics, abs=1e-6)


def test_resume_is_exact_with_loader_worker_processes(data_root: Path, tmp_path: Path) -> None:
    """Augmentations drawn in loader workers are re-seeded per epoch, so resume stays exact."""
    config = tiny_config(data_root, "data.loader.num_workers=1", "solver.max_epochs=2")
    whole = run_training(config, tmp_path / "whole")
    with pytest.raises(InterruptedRunError):
        run_training(config, tmp_path / "first", hooks=RecordingHooks(stop_after_epoch=0))
    checkpoint = tmp_path / "first/checkpoints/epoch_0000"
    resumed = run_training(config, tmp_path / "second", resume_from=checkpoint)
    assert train_losses(resumed)[1] == pytest.approx(train_losses(whole)[1], abs=1e-6)


def test_resuming_a_finished_run_trains_nothing(reference: Run, data_root: Path) -> None:
    final = reference.outcome.final_checkpoint_dir
    assert final is not None
    hooks = RecordingHooks()
    outcome = train(
        tiny_config(data_root),
        placement=WorkerPlacement(),
        hooks=hooks,
        work_dir=final.parent,
        resume_from=final,
    )
    assert outcome.epochs_run == 0 and hooks.calls == []
    assert outcome.test_metrics == reference.outcome.test_metrics


def test_logged_learning_rate_follows_the_schedule(reference: Run) -> None:
    """Warmup (linear from 0.1 over 4 iterations) × cosine to 1e-6 over 3 epochs, by hand."""
    base, eta_min, iters = 3.5e-4, 1e-6, reference.hooks.iterations[0].iters_per_epoch

    def expected(iteration: int) -> float:
        warmup = 1.0 if iteration >= 4 else 0.1 * (1 - iteration / 4) + iteration / 4
        progress = iteration / iters / 3
        return warmup * (eta_min + (base - eta_min) * 0.5 * (1 + math.cos(math.pi * progress)))

    for end in reference.hooks.epochs:  # the LR of each epoch's last iteration
        last = (end.epoch + 1) * iters - 1
        assert end.metrics[metric_names.TRAIN_LR] == pytest.approx(expected(last), rel=1e-9)
    for log in reference.hooks.iterations:
        assert log.lr == pytest.approx(expected(log.iteration), rel=1e-9)


class NanOnCall(nn.Module):
    """Wraps a loss; its `nan_call`-th call (0-based) returns NaN."""

    def __init__(self, loss: nn.Module, nan_call: int) -> None:
        super().__init__()
        self.loss, self.nan_call, self.calls = loss, nan_call, 0

    def forward(self, inputs: Tensor, targets: Tensor) -> Tensor:
        value: Tensor = self.loss(inputs, targets)
        self.calls += 1
        return value * float("nan") if self.calls - 1 == self.nan_call else value


def test_non_finite_loss_stops_naming_iteration_and_term(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def poisoned_loss(config: Any) -> ReidLoss:
        loss = build_loss(config)
        loss.losses["triplet"] = NanOnCall(loss.losses["triplet"], nan_call=4)
        return loss

    monkeypatch.setattr(loop_module, "build_loss", poisoned_loss)
    config = tiny_config(data_root, "solver.max_epochs=2")
    with pytest.raises(NonFiniteLossError, match=r"'triplet' is nan at iteration 4"):
        train(config, placement=WorkerPlacement(), hooks=TrainingHooks(), work_dir=tmp_path)


EXPORTING = ("export.throughput_batch=4", "solver.max_epochs=1")
SPEED_METRICS = (metric_names.EXPORT_LATENCY_MS, metric_names.EXPORT_IMAGES_PER_SEC)


def test_final_export_writes_the_trained_model_as_verified_onnx(
    data_root: Path, tmp_path: Path
) -> None:
    config = tiny_config(data_root, "export.formats=[onnx]", *EXPORTING)
    run = run_training(config, tmp_path)
    final = run.outcome.final_checkpoint_dir
    assert final is not None
    export = final / "export"
    assert sorted(p.name for p in export.iterdir()) == ["manifest.json", "model.onnx"]
    manifest = read_manifest_file(export)
    assert manifest.failures == ()
    entry = manifest.find("onnx")
    assert entry.sha256 == hashlib.sha256((export / "model.onnx").read_bytes()).hexdigest()
    assert entry.source_checkpoint == "model.pt" and entry.config_hash == config_hash(config)
    assert entry.validation_map is not None and entry.parity is not None
    assert entry.speed is not None and entry.speed.exported.batch == 4
    expected = {
        metric_names.EXPORT_LATENCY_MS: entry.speed.exported.latency_ms,
        metric_names.EXPORT_IMAGES_PER_SEC: entry.speed.exported.throughput,
    }
    final_metrics = run.hooks.epochs[-1].metrics
    assert {name: final_metrics[name] for name in SPEED_METRICS} == expected
    saved = json.loads((final / "metrics.json").read_text())
    assert {name: saved[name] for name in SPEED_METRICS} == expected
    # The ONNX file computes the trained weights saved in model.pt.
    trained = load_model_file(final / "model.pt").model
    images = torch.randint(0, 256, (5, 3, 64, 32)).float()
    reference = pytorch_embeddings(trained, images, normalize=entry.normalized)
    exported = OnnxRuntimeEmbedder(export / "model.onnx")(images.numpy())
    assert float(abs(exported - reference).max()) <= 1e-4


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT runs here")
def test_an_export_that_cannot_run_never_fails_the_run(data_root: Path, tmp_path: Path) -> None:
    run = run_training(tiny_config(data_root, "export.formats=[tensorrt]", *EXPORTING), tmp_path)
    final = run.outcome.final_checkpoint_dir
    assert final is not None and run.hooks.epochs[-1].final
    assert load_model_file(final / "model.pt").source["epoch"] == 0
    manifest = read_manifest_file(final / "export")
    reason = tensorrt_unavailable_reason()
    assert reason is not None
    assert manifest.exports == ()
    assert manifest.failures == (ExportFailure("tensorrt", "fp32", "skipped", reason),)
    saved = json.loads((final / "metrics.json").read_text())
    assert not set(SPEED_METRICS) & (set(saved) | set(run.hooks.epochs[-1].metrics))


def test_export_final_model_records_an_unexpected_error(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(data_root, "export.formats=[onnx]")
    data = build_data(config.data)
    model = build_model(config.model, config.input, num_classes=data.num_classes)
    (tmp_path / "model.pt").write_bytes(b"the checkpoint")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire\nand more detail")

    assert export_final_model(model, tiny_config(data_root), data, tmp_path) == {}
    assert not (tmp_path / "export").exists()  # export.formats=[]
    monkeypatch.setattr(final_export_module, "load_validation_images", broken)
    assert export_final_model(model, config, data, tmp_path) == {}
    assert read_manifest_file(tmp_path / "export").failures == (
        ExportFailure("onnx", "fp32", "failed", "unexpected RuntimeError: disk on fire"),
    )
    assert (tmp_path / "model.pt").read_bytes() == b"the checkpoint"
