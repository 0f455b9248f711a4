"""`reid eval` end to end on a tiny synthetic benchmark with a random-init model file."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from reid_platform.cli.main import main
from reid_platform.config import load_config
from reid_platform.data.build import build_data
from reid_platform.evaluation.distances import pairwise_distances
from reid_platform.evaluation.ranking import evaluate_ranking
from reid_platform.modeling.build import build_model
from reid_platform.modeling.model_file import save_model_file

REPO = Path(__file__).resolve().parents[2]
SMALL = [
    "data.train.0.synthetic.ids=12",
    "data.test.0.synthetic.ids=12",
    "data.train.0.synthetic.images_per_id=6",
    "data.test.0.synthetic.images_per_id=6",
    "data.validation.num_ids=2",
    "data.loader.num_workers=0",
    "input.size_test=[64,32]",
    "input.size_train=[64,32]",
    "evaluation.rank_list_queries=2",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A config file pointing at a tiny synthetic set, and a model file for its model."""
    root = tmp_path_factory.mktemp("eval")
    overrides = [
        *SMALL,
        f"data.train.0.root={root / 'synth'}",
        f"data.test.0.root={root / 'synth'}",
    ]
    config = load_config(REPO / "experiments/quickstart.yaml", overrides)
    model = build_model(config.model, config.input, num_classes=10)
    weights = save_model_file(
        model.eval(), config=config, num_classes=10, source={"format": "test"}, out=root / "m.pt"
    )
    return REPO / "experiments/quickstart.yaml", weights, overrides


def test_eval_saves_features_that_reproduce_its_metrics(
    setup: tuple[Path, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, weights, overrides = setup
    features = tmp_path / "features.npz"
    report = tmp_path / "report"
    argv = ["eval", str(config_path), *overrides, "--weights", str(weights), "--json"]
    assert main([*argv, "--save-features", str(features), "--report", str(report)]) == 0
    metrics = json.loads(capsys.readouterr().out)["synthetic"]
    saved = np.load(features)
    # The test split as the data stage sees it, in loader order.
    test = build_data(load_config(config_path, overrides).data).test[0]
    assert list(saved["q_pids"]) == [r.pid for r in test.query.records]
    assert list(saved["g_camids"]) == [r.camid for r in test.gallery.records]
    # Recompute mAP from the saved features with the ranking functions directly.
    distmat = pairwise_distances(saved["q_feats"], saved["g_feats"], "cosine")
    ranking = evaluate_ranking(
        distmat, saved["q_pids"], saved["g_pids"], saved["q_camids"], saved["g_camids"]
    )
    assert metrics["mAP"] == pytest.approx(ranking.mAP) and 0.0 < metrics["mAP"] <= 1.0
    assert (report / "roc/roc.png").is_file() and (report / "roc/roc.csv").is_file()
    assert len(list((report / "ranklist").glob("*.png"))) == 2


def test_eval_by_run_id_matches_eval_by_file(
    setup: tuple[Path, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, weights, overrides = setup
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    (tmp_path / "upload").mkdir()
    (tmp_path / "upload/model.pt").write_bytes(weights.read_bytes())
    client.log_artifact(run_id, str(tmp_path / "upload/model.pt"), artifact_path="checkpoints")
    base = ["eval", str(config_path), *overrides, "--json"]
    assert main([*base, "--weights", str(weights)]) == 0
    by_file = json.loads(capsys.readouterr().out)
    assert main([*base, "--run", run_id, "--tracking-uri", uri]) == 0
    assert json.loads(capsys.readouterr().out) == by_file
    assert main([*base, "--run", "feedbeef", "--tracking-uri", uri]) == 2
    assert "run 'feedbeef' is not in the tracking store" in capsys.readouterr().err


def test_missing_model_file_is_one_sentence(
    setup: tuple[Path, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, _, overrides = setup
    assert main(["eval", str(config_path), *overrides, "--weights", str(tmp_path / "no.pt")]) == 2
    assert "model file" in capsys.readouterr().err
