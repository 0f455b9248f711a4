"""Optuna side of a search space: conditional define-by-run, seed points, sampler, trial configs.

Real Optuna studies throughout; Ray's OptunaSearch is exercised without starting Ray (its
`suggest` runs in-process).
"""

import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest

from reid_platform.config import load_config
from reid_platform.config.schema import ReidConfig
from reid_platform.config.search import SearchSpaceConfig, read_search_space
from reid_platform.distributed.search_space import (
    build_sampler,
    define_by_run,
    open_optuna_storage,
    sampled_params,
    seed_points,
    trial_config,
)
from reid_platform.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
TRIALS = 60

# Classifier margins only for their classifier; triplet margin only when triplet is on with
# a fixed margin (a two-level chain); a quantized, an int and a log-uniform parameter.
RAW_SPACE: dict[str, Any] = {
    "fixed": {"solver.max_epochs": 4, "distributed.num_workers": 1},
    "params": {
        "losses.triplet.margin": {
            "type": "uniform",
            "low": 0.1,
            "high": 0.5,
            "when": {"losses.triplet.margin_kind": ["fixed"], "losses.triplet.enabled": [True]},
        },
        "model.classifier.kind": {"type": "choice", "values": ["linear", "arcface", "circle"]},
        "model.classifier.arcface.margin": {
            "type": "uniform",
            "low": 0.2,
            "high": 0.6,
            "when": {"model.classifier.kind": ["arcface"]},
        },
        "model.classifier.circle.scale": {
            "type": "int",
            "low": 32,
            "high": 128,
            "step": 32,
            "when": {"model.classifier.kind": ["circle"]},
        },
        "losses.triplet.margin_kind": {
            "type": "choice",
            "values": ["fixed", "soft"],
            "when": {"losses.triplet.enabled": [True]},
        },
        "losses.triplet.enabled": {"type": "choice", "values": [True, False]},
        "losses.cross_entropy.epsilon": {"type": "quantized", "low": 0.0, "high": 0.3, "q": 0.1},
        "solver.optimizer.base_lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
    },
    "seed_points": [
        {
            "model.classifier.kind": "arcface",
            "model.classifier.arcface.margin": 0.5,
            "losses.triplet.enabled": True,
            "losses.triplet.margin_kind": "fixed",
            "losses.triplet.margin": 0.3,
            "losses.cross_entropy.epsilon": 0.1,
            "solver.optimizer.base_lr": 0.00035,
        },
        {
            "model.classifier.kind": "linear",
            "losses.triplet.enabled": False,
            "losses.cross_entropy.epsilon": 0,
            "solver.optimizer.base_lr": 0.001,
        },
    ],
}


@pytest.fixture(scope="module")
def space() -> SearchSpaceConfig:
    return read_search_space(RAW_SPACE)


@pytest.fixture(scope="module")
def base() -> ReidConfig:
    return load_config(REPO / "experiments" / "quickstart.yaml")


def expected_keys(params: dict[str, Any]) -> set[str]:
    """Which keys must exist, worked out by hand from the conditions above."""
    keys = {
        "model.classifier.kind",
        "losses.triplet.enabled",
        "losses.cross_entropy.epsilon",
        "solver.optimizer.base_lr",
    }
    if params["model.classifier.kind"] == "arcface":
        keys.add("model.classifier.arcface.margin")
    if params["model.classifier.kind"] == "circle":
        keys.add("model.classifier.circle.scale")
    if params["losses.triplet.enabled"] is True:
        keys.add("losses.triplet.margin_kind")
        if params["losses.triplet.margin_kind"] == "fixed":
            keys.add("losses.triplet.margin")
    return keys


def run_study(space: SearchSpaceConfig, trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """Ask/tell a real study, as Ray's OptunaSearch does; the objective is arbitrary."""
    study = optuna.create_study(sampler=build_sampler(space, seed=seed), direction="maximize")
    for point in seed_points(space):
        study.enqueue_trial(point)
    suggest = define_by_run(space)
    asked = []
    for index in range(trials):
        trial = study.ask()
        assert suggest(trial) is None
        asked.append(dict(trial.params))
        study.tell(trial, float(index % 7))
    return asked


def test_conditional_params_exist_exactly_where_their_conditions_hold(
    space: SearchSpaceConfig,
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    asked = run_study(space, TRIALS)
    for params in asked:
        assert set(params) == expected_keys(params), params
    # Both sides of every condition were visited, so the check above had something to check.
    for key in ("model.classifier.arcface.margin", "model.classifier.circle.scale"):
        assert 0 < sum(key in params for params in asked) < TRIALS
    margins = [params for params in asked if "losses.triplet.margin" in params]
    soft = [params for params in asked if params.get("losses.triplet.margin_kind") == "soft"]
    assert margins and soft


def test_suggested_values_lie_in_their_distributions(space: SearchSpaceConfig) -> None:
    for params in run_study(space, TRIALS, seed=1):
        assert 0.1 <= params.get("losses.triplet.margin", 0.3) <= 0.5
        assert 0.2 <= params.get("model.classifier.arcface.margin", 0.4) <= 0.6
        assert params.get("model.classifier.circle.scale", 32) in (32, 64, 96, 128)
        epsilon = params["losses.cross_entropy.epsilon"]
        assert min(abs(epsilon - grid) for grid in (0.0, 0.1, 0.2, 0.3)) < 1e-9
        assert 1e-4 <= params["solver.optimizer.base_lr"] <= 1e-2


def test_seed_points_come_first_and_equal_the_given_points(space: SearchSpaceConfig) -> None:
    asked = run_study(space, 4)
    assert asked[0] == RAW_SPACE["seed_points"][0]
    assert asked[1] == RAW_SPACE["seed_points"][1]
    # The int 0 given for a quantized float comes back as that float.
    assert isinstance(asked[1]["losses.cross_entropy.epsilon"], float)


def test_sampler_is_reproducible_per_seed(space: SearchSpaceConfig) -> None:
    assert run_study(space, 12, seed=3) == run_study(space, 12, seed=3)
    assert run_study(space, 12, seed=3) != run_study(space, 12, seed=4)


def test_sampler_kind_follows_the_number_of_objectives(space: SearchSpaceConfig) -> None:
    assert isinstance(build_sampler(space, seed=0), optuna.samplers.TPESampler)
    objectives = [{"metric": "eval/mAP"}, {"metric": "model/params", "mode": "min"}]
    two = read_search_space({**RAW_SPACE, "objectives": objectives})
    # TPE for two objectives too (NSGA-II's first generation of 50 would be all random).
    assert isinstance(build_sampler(two, seed=0), optuna.samplers.TPESampler)
    study = optuna.create_study(
        sampler=build_sampler(two, seed=0), directions=["maximize", "minimize"]
    )
    trial = study.ask()
    define_by_run(two)(trial)
    study.tell(trial, [0.5, 1e6])
    assert len(study.best_trials) == 1


def test_ray_optuna_search_keeps_dotted_keys_and_seed_points(space: SearchSpaceConfig) -> None:
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(
        define_by_run(space),
        metric="eval/mAP",
        mode="max",
        points_to_evaluate=seed_points(space),
        sampler=build_sampler(space, seed=0),
    )
    configs = [searcher.suggest(f"t{index}") for index in range(6)]
    assert configs[0] == RAW_SPACE["seed_points"][0]
    assert configs[1] == {**RAW_SPACE["seed_points"][1], "losses.cross_entropy.epsilon": 0.0}
    for config in configs:
        assert config is not None
        assert set(config) == expected_keys(config)  # flat dotted keys, not nested dicts
    # Tune pickles the searcher (with the define-by-run function) for `Tuner.restore`.
    restored = pickle.loads(pickle.dumps(searcher.__dict__))
    assert restored["_space"].space == space


def test_two_objective_searcher_seeds_first_and_records_both_metrics_in_its_storage(
    tmp_path: Path,
) -> None:
    from reid_platform.distributed.search import build_searcher  # imports Ray, never starts it

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    objectives = [{"metric": "eval/mAP"}, {"metric": "model/params", "mode": "min"}]
    two = read_search_space({**RAW_SPACE, "objectives": objectives, "optuna_storage": storage})
    searcher = build_searcher(two, seed=0, study_name="two-objectives")
    results = [(0.5, 2e6), (0.4, 1e6), (0.3, 3e6), (0.6, 4e6)]
    configs = []
    for index, (mean_ap, size) in enumerate(results):
        config = searcher.suggest(f"t{index}")
        assert config is not None
        configs.append(config)
        searcher.on_trial_complete(f"t{index}", {"eval/mAP": mean_ap, "model/params": size})
    assert configs[0] == RAW_SPACE["seed_points"][0]
    assert configs[1] == {**RAW_SPACE["seed_points"][1], "losses.cross_entropy.epsilon": 0.0}
    # Read back from the database, independently of the searcher.
    study = optuna.load_study(study_name="two-objectives", storage=storage)
    assert [trial.values for trial in study.trials] == [list(pair) for pair in results]
    assert study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    # Pareto front by hand: (0.5, 2e6) and (0.4, 1e6) and (0.6, 4e6); (0.3, 3e6) is dominated.
    front = sorted(tuple(trial.values) for trial in study.best_trials)
    assert front == [(0.4, 1e6), (0.5, 2e6), (0.6, 4e6)]


def test_unopenable_optuna_storage_names_it(tmp_path: Path) -> None:
    for url in ("nonsense", f"sqlite:///{tmp_path / 'missing' / 'optuna.db'}"):
        with pytest.raises(ConfigError, match=r"^optuna_storage '.*' cannot be opened \("):
            open_optuna_storage(url)
    with pytest.raises(ConfigError) as caught:
        open_optuna_storage("postgresql://user:secret@127.0.0.1:1/db")
    assert "secret" not in str(caught.value)  # the password is not printed
    open_optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert (tmp_path / "optuna.db").is_file()


def test_sampled_params_keeps_only_searched_keys(space: SearchSpaceConfig) -> None:
    tune_config = {
        "__reid__": {"search_name": "s"},
        "model.classifier.kind": "linear",
        "losses.triplet.enabled": False,
        "unrelated": 1,
    }
    assert sampled_params(tune_config, space) == {
        "model.classifier.kind": "linear",
        "losses.triplet.enabled": False,
    }


def test_trial_config_applies_fixed_then_params(space: SearchSpaceConfig, base: ReidConfig) -> None:
    params = {"model.classifier.kind": "arcface", "model.classifier.arcface.margin": 0.25}
    config = trial_config(base, space, params)
    assert config.solver.max_epochs == 4 and config.distributed.num_workers == 1
    assert config.model.classifier.kind == "arcface"
    assert config.model.classifier.arcface.margin == 0.25
    # Unsampled conditional keys keep the base value; everything else is the base's.
    assert config.losses.triplet.margin == base.losses.triplet.margin
    assert config.model.pooling == base.model.pooling and config.data == base.data


def test_trial_config_names_the_refused_parameter(
    space: SearchSpaceConfig, base: ReidConfig
) -> None:
    with pytest.raises(ConfigError) as caught:
        trial_config(base, space, {"model.classifier.arcface.margin": -1.0})
    message = str(caught.value)
    assert message.startswith(
        "search parameter model.classifier.arcface.margin=-1.0 is not accepted"
    )
    broken = space.model_copy(update={"fixed": {"solver.max_epochs": 0}})
    with pytest.raises(ConfigError, match=r"^fixed setting solver\.max_epochs=0 is not accepted"):
        trial_config(base, broken, {"model.classifier.kind": "linear"})
