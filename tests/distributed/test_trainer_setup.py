"""The Ray side without a cluster: config → Ray objects, report hooks, run names, error mapping."""

import re
from pathlib import Path
from typing import Any

import pytest
import ray.train
import ray.train.torch
from rich.console import Console
from torch import nn

from reid_platform.cli.train_command import (
    FinishedRun,
    new_run_name,
    summary_table,
    with_run_name,
)
from reid_platform.config import load_config
from reid_platform.distributed import worker
from reid_platform.distributed.callbacks import epoch_metrics
from reid_platform.distributed.trainer import (
    _sentence,
    _user_error,
    check_device,
    scaling_config,
    storage_location,
)
from reid_platform.errors import ConfigError, ReidError
from reid_platform.training.hooks import EpochEnd, TrainingOutcome

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments/quickstart.yaml"


def test_storage_location_is_absolute_for_paths_and_untouched_for_uris(tmp_path: Path) -> None:
    config = load_config(QUICKSTART, ["distributed.storage_path=out/ray"]).distributed
    assert storage_location(config, tmp_path) == str(tmp_path / "out" / "ray")
    remote = load_config(QUICKSTART, ["distributed.storage_path=s3://bucket/ray"]).distributed
    assert storage_location(remote, tmp_path) == "s3://bucket/ray"


def test_scaling_config_requests_cpus_and_gpus_per_worker() -> None:
    config = load_config(QUICKSTART, ["distributed.num_workers=3", "distributed.cpus_per_worker=2"])
    scaling = scaling_config(config.distributed)
    assert (scaling.num_workers, scaling.use_gpu) == (3, False)
    assert scaling.resources_per_worker == {"CPU": 2}
    gpu = load_config(QUICKSTART, ["distributed.use_gpu=true", "distributed.cpus_per_worker=8"])
    assert scaling_config(gpu.distributed).resources_per_worker == {"CPU": 8, "GPU": 1}


def test_cuda_device_without_gpu_workers_is_refused() -> None:
    config = load_config(QUICKSTART, ["training.device=cuda"])
    with pytest.raises(ReidError, match=r"distributed\.use_gpu is false"):
        check_device(config)


def test_worker_user_error_is_found_behind_rays_wrapper() -> None:
    failure = ray.train.WorkerGroupError("boom", {1: ConfigError("data.x is wrong")})
    found = _user_error(failure)
    assert isinstance(found, ConfigError) and str(found) == "data.x is wrong"
    assert _user_error(ray.train.WorkerGroupError("boom", {0: RuntimeError("bug")})) is None


def test_worker_error_sentence_drops_rays_traceback_and_class_name() -> None:
    wrapped = RuntimeError("Traceback ...\n  File x\nreid_platform.errors.ConfigError: bad key\n")
    assert _sentence(wrapped) == "bad key"
    assert _sentence(ConfigError("plain sentence")) == "plain sentence"


def test_epoch_metrics_strip_the_bookkeeping_keys() -> None:
    reported = {"train/loss": 1, "eval/mAP": 0.5, worker.EPOCH_KEY: 3, worker.FINAL_KEY: True}
    assert epoch_metrics(reported) == (3, True, {"train/loss": 1.0, "eval/mAP": 0.5})


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], **kwargs: Any) -> None:
        calls.append({"metrics": metrics, **kwargs})

    monkeypatch.setattr(ray.train, "report", report)
    return calls


def test_rank0_reports_its_checkpoint_other_ranks_only_metrics(
    reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    metrics = {"train/loss": 2.0}
    worker.RayReportHooks(0).on_epoch_end(
        EpochEnd(epoch=4, metrics=metrics, checkpoint_dir=tmp_path, final=False)
    )
    worker.RayReportHooks(1).on_epoch_end(
        EpochEnd(epoch=4, metrics=metrics, checkpoint_dir=None, final=False)
    )
    rank0, rank1 = reports
    assert rank0["metrics"] == rank1["metrics"] == {"train/loss": 2.0, "epoch": 4, "final": False}
    assert Path(rank0["checkpoint"].path) == tmp_path
    assert rank0["checkpoint_dir_name"] == "epoch_0004"
    assert rank0["delete_local_checkpoint_after_upload"] is True
    assert "checkpoint" not in rank1


def test_final_checkpoint_stays_on_the_worker(
    reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    worker.RayReportHooks(0).on_epoch_end(
        EpochEnd(epoch=9, metrics={}, checkpoint_dir=tmp_path, final=True)
    )
    assert reports[0]["delete_local_checkpoint_after_upload"] is False
    assert reports[0]["metrics"]["final"] is True


@pytest.mark.parametrize(("freeze", "find_unused"), [([], False), (["backbone"], True)])
def test_ddp_tolerates_unused_parameters_only_while_a_freeze_is_configured(
    monkeypatch: pytest.MonkeyPatch, freeze: list[str], find_unused: bool
) -> None:
    seen: dict[str, Any] = {}

    def prepare_model(model: nn.Module, **kwargs: Any) -> nn.Module:
        seen.update(kwargs)
        return model

    monkeypatch.setattr(ray.train.torch, "prepare_model", prepare_model)
    config = load_config(QUICKSTART, [f"solver.freeze.modules={freeze}", "solver.freeze.iters=10"])
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    wrapped = worker.model_wrapper(config, world_size=2)(model)
    assert seen["parallel_strategy_kwargs"] == {"find_unused_parameters": find_unused}
    # No SyncBN on CPU workers: torch's SyncBatchNorm refuses CPU tensors.
    assert isinstance(wrapped[1], nn.BatchNorm1d) and not isinstance(wrapped[1], nn.SyncBatchNorm)


def test_run_name_comes_from_the_flag_then_the_config_then_is_new() -> None:
    config = load_config(QUICKSTART, ["tracking.run_name=from-config"])
    assert with_run_name(config, "from-flag").tracking.run_name == "from-flag"
    assert with_run_name(config, None).tracking.run_name == "from-config"
    unnamed = load_config(QUICKSTART)
    generated = with_run_name(unnamed, None).tracking.run_name
    assert generated is not None
    assert re.fullmatch(r"quickstart-\d{8}-\d{6}-[0-9a-f]{4}", generated)
    assert len({new_run_name("x") for _ in range(20)}) > 1


def test_summary_table_names_the_run_and_final_metrics() -> None:
    outcome = TrainingOutcome(
        validation_metrics={"eval/mAP": 0.5},
        test_metrics={"test/mAP": 0.25},
        start_epoch=2,
        epochs_run=4,
        wall_time_s=30.0,
        final_checkpoint_dir=None,
    )
    console = Console(width=120, record=True)
    console.print(summary_table(FinishedRun("run-a", "abc123", outcome, 42.0), max_epochs=6))
    text = console.export_text()
    for expected in ("run-a", "abc123", "6/6 (resumed after epoch 2)", "50.00%", "25.00%", "42 s"):
        assert expected in text
