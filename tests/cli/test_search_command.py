"""`reid search` refusals that happen before Ray starts, and the command's own texts (no Ray)."""

import argparse
import re
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from reid_platform.cli import main
from reid_platform.cli.search_command import new_search_name, resume_command
from reid_platform.config import load_config
from reid_platform.config.flatten import to_yaml

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments/quickstart.yaml"

GOOD_PARAMS: dict[str, object] = {
    "model.pooling.kind": {"type": "choice", "values": ["avg", "gem"]},
    "model.classifier.kind": {"type": "choice", "values": ["linear", "arcface"]},
}


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """A tiny synthetic experiment whose data and Ray storage live in `tmp_path`."""
    root = tmp_path / "synth"
    synthetic = {"ids": 12, "images_per_id": 4, "height": 32, "width": 16}
    overrides = [
        *(f"data.{split}.0.root={root}" for split in ("train", "test")),
        *(f"data.{s}.0.synthetic.{k}={v}" for s in ("train", "test") for k, v in synthetic.items()),
        "data.validation.num_ids=2",
        f"distributed.storage_path={tmp_path / 'ray'}",
    ]
    path = tmp_path / "tiny.yaml"
    path.write_text(to_yaml(load_config(QUICKSTART, overrides)))
    return path


def write_space(folder: Path, params: dict[str, object], **extra: object) -> Path:
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump({"num_samples": 2, **extra, "params": params}))
    return path


def search(
    capsys: pytest.CaptureFixture[str], experiment: Path, space: Path, *extra: str
) -> tuple[int, str]:
    uri = f"sqlite:///{experiment.parent / 'mlflow.db'}"
    status = main(["search", str(experiment), "--space", str(space), "--tracking-uri", uri, *extra])
    return status, capsys.readouterr().err


def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return err[err.index("error: ") :].strip()


def assert_nothing_started(folder: Path) -> None:
    """No Tune experiment, no Train run, no MLflow run."""
    assert not (folder / "ray").exists()
    db = folder / "mlflow.db"
    if db.exists():
        client = MlflowClient(f"sqlite:///{db}")
        experiments = client.search_experiments()
        ids = [experiment.experiment_id for experiment in experiments]
        assert client.search_runs(ids) == []


@pytest.mark.parametrize(
    ("params", "extra", "culprit"),
    [
        # a choice the config refuses
        (
            {**GOOD_PARAMS, "model.pooling.kind": {"type": "choice", "values": ["avg", "foo"]}},
            {},
            "model.pooling.kind",
        ),
        # a path that is not a config key
        ({**GOOD_PARAMS, "model.poling.kind": {"type": "choice", "values": ["a"]}}, {}, "poling"),
        # a condition on a value its parameter never takes
        (
            {
                **GOOD_PARAMS,
                "model.classifier.circle.margin": {
                    "type": "uniform",
                    "low": 0.1,
                    "high": 0.4,
                    "when": {"model.classifier.kind": ["circle"]},
                },
            },
            {},
            "model.classifier.circle.margin",
        ),
        # a fixed setting the config refuses
        (GOOD_PARAMS, {"fixed": {"solver.max_epochs": 0}}, "solver.max_epochs"),
        # a setting the driver reads once (ASHA's max_t)
        (
            {**GOOD_PARAMS, "solver.max_epochs": {"type": "int", "low": 2, "high": 4}},
            {},
            "solver.max_epochs",
        ),
        # an eval/* objective without a validation split
        (GOOD_PARAMS, {"fixed": {"data.validation.num_ids": None}}, "data.validation"),
        # an Optuna storage that cannot be opened
        (GOOD_PARAMS, {"optuna_storage": "nonsense"}, "optuna_storage"),
    ],
)
def test_bad_space_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
    experiment: Path,
    params: dict[str, object],
    extra: dict[str, object],
    culprit: str,
) -> None:
    space = write_space(experiment.parent, params, **extra)
    status, err = search(capsys, experiment, space)
    assert status == 2
    assert culprit in error_line(err)
    assert_nothing_started(experiment.parent)


def test_resume_needs_a_name_and_keeps_the_budget(
    capsys: pytest.CaptureFixture[str], experiment: Path
) -> None:
    space = write_space(experiment.parent, GOOD_PARAMS)
    status, err = search(capsys, experiment, space, "--resume")
    assert status == 2 and "--name" in error_line(err)
    status, err = search(capsys, experiment, space, "--resume", "--name", "s", "--num-samples", "3")
    assert status == 2 and "--num-samples" in error_line(err)
    assert_nothing_started(experiment.parent)


def test_resuming_an_unknown_search_names_it(
    capsys: pytest.CaptureFixture[str], experiment: Path
) -> None:
    space = write_space(experiment.parent, GOOD_PARAMS)
    status, err = search(capsys, experiment, space, "--resume", "--name", "never-ran")
    assert status == 2
    assert "'never-ran'" in error_line(err) and "resume" in error_line(err)
    assert_nothing_started(experiment.parent)


def test_search_name_and_resume_command() -> None:
    assert re.fullmatch(r"quickstart-search-\d{8}-\d{6}-[0-9a-f]{4}", new_search_name("quickstart"))
    args = argparse.Namespace(
        config="experiments/quick start.yaml",
        overrides=["solver.max_epochs=3"],
        space="search_spaces/quickstart.yaml",
        tracking_uri="sqlite:///mlflow.db",
        address=None,
    )
    assert resume_command(args, "s1") == (
        "reid search 'experiments/quick start.yaml' solver.max_epochs=3 "
        "--space search_spaces/quickstart.yaml --name s1 --resume "
        "--tracking-uri sqlite:///mlflow.db"
    )
    args.address = "10.0.0.1:6379"
    assert resume_command(args, "s1").endswith("--address 10.0.0.1:6379")


def test_overrides_reach_the_base_config_and_are_checked(
    capsys: pytest.CaptureFixture[str], experiment: Path
) -> None:
    space = write_space(experiment.parent, GOOD_PARAMS)
    status, err = search(capsys, experiment, space, "solver.max_epoch=3")
    assert status == 2 and "solver.max_epoch" in error_line(err)
    # A distillation base without its teacher: refused before Ray or MLflow start.
    status, err = search(capsys, experiment, space, "distillation.enabled=true")
    assert status == 2 and "needs a teacher" in error_line(err)
    assert_nothing_started(experiment.parent)
