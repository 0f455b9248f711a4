"""Search-space files: schema, loading errors, and the checks against the searched config."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from reid_platform.config import load_config
from reid_platform.config.schema import ReidConfig
from reid_platform.config.search import (
    SearchSpaceConfig,
    contains,
    load_search_space,
    read_search_space,
)
from reid_platform.config.search_check import (
    apply_settings,
    check_search_space,
    condition_order,
    witness,
)
from reid_platform.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments" / "quickstart.yaml"
POOLING = {"model.pooling.kind": {"type": "choice", "values": ["avg", "gem"]}}
CLASSIFIER = {"type": "choice", "values": ["linear", "arcface", "circle"]}
ARCFACE_MARGIN = {
    "type": "uniform",
    "low": 0.2,
    "high": 0.6,
    "when": {"model.classifier.kind": ["arcface"]},
}

# Each shipped space and the experiments it is meant to search.
SHIPPED = {
    "quickstart": ["quickstart"],
    "architecture": ["bot_r50", "agw_r50", "sbs_r50"],
    "loss_margins": ["bot_r50", "agw_r50", "sbs_r50", "quickstart"],
}


@pytest.fixture(scope="module")
def base() -> ReidConfig:
    return load_config(QUICKSTART)


def space(params: dict[str, Any], **extra: Any) -> SearchSpaceConfig:
    return read_search_space({"params": params, **extra})


def schema_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        read_search_space(raw)
    return str(caught.value)


def check_error(params: dict[str, Any], base: ReidConfig, **extra: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        check_search_space(space(params, **extra), base)
    return str(caught.value)


# --- loading -------------------------------------------------------------------------------


def test_load_reads_fixed_study_name_and_conditions(tmp_path: Path) -> None:
    raw = {
        "study_name": "s1",
        "fixed": {"solver.max_epochs": 3},
        "params": {
            "model.classifier.kind": CLASSIFIER,
            "model.classifier.arcface.margin": ARCFACE_MARGIN,
        },
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    loaded = load_search_space(path)
    assert loaded.study_name == "s1"
    assert loaded.fixed == {"solver.max_epochs": 3}
    assert loaded.params["model.classifier.arcface.margin"].when == {
        "model.classifier.kind": ("arcface",)
    }
    assert loaded.objectives[0].metric == "eval/mAP" and loaded.objectives[0].mode == "max"


def test_load_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"search space file .*nope\.yaml does not exist"):
        load_search_space(tmp_path / "nope.yaml")


def test_load_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("params:\n  a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML at line \d"):
        load_search_space(path)


def test_load_validation_error_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({"params": {"model.pooling.knd": POOLING["model.pooling.kind"]}})
    )
    with pytest.raises(ConfigError) as caught:
        load_search_space(path)
    message = str(caught.value)
    assert str(path) in message and "`model.pooling.knd` is not a config path" in message
    assert "'kind'" in message  # the close match


def test_unknown_distribution_field_names_the_parameter_key() -> None:
    message = schema_error(
        {"params": {"solver.max_epochs": {"type": "int", "low": 1, "high": 4, "stp": 1}}}
    )
    assert "key `params.solver.max_epochs.stp` is unknown" in message
    assert "'step'" in message


def test_distribution_error_hides_the_union_tag() -> None:
    message = schema_error(
        {"params": {"model.pooling.kind": {"type": "choice", "values": ["a", "a"]}}}
    )
    assert (
        message
        == "search space: key `params.model.pooling.kind` is invalid: choice 'a' is listed twice"
    )


@pytest.mark.parametrize(
    ("distribution", "expected"),
    [
        ({"type": "int", "low": 1, "high": 4, "step": 2}, "high - low must be a multiple of step"),
        ({"type": "quantized", "low": 0.0, "high": 0.25, "q": 0.1}, "multiple of q"),
        ({"type": "uniform", "low": 0.5, "high": 0.5}, "low must be smaller than high"),
        ({"type": "loguniform", "low": 0.0, "high": 1.0}, "loguniform needs low > 0"),
    ],
)
def test_bad_ranges_are_refused(distribution: dict[str, Any], expected: str) -> None:
    message = schema_error({"params": {"losses.triplet.margin": distribution}})
    assert "`params.losses.triplet.margin`" in message and expected in message


def test_test_metric_objective_is_refused_with_a_reason() -> None:
    message = schema_error({"objectives": [{"metric": "test/mAP"}], "params": POOLING})
    assert "objectives.0.metric" in message and "test-split metric" in message


def test_unknown_objective_metric_lists_close_names() -> None:
    message = schema_error({"objectives": [{"metric": "eval/map"}], "params": POOLING})
    assert "objectives.0.metric" in message and "'eval/mAP'" in message


def test_exported_latency_is_an_objective_but_not_for_asha(base: ReidConfig) -> None:
    pareto = [{"metric": "eval/mAP"}, {"metric": "export/latency_ms", "mode": "min"}]
    searched = space(POOLING, objectives=pareto, scheduler={"kind": "none"})
    check_search_space(searched, base)  # quickstart exports onnx
    asha = {"objectives": [{"metric": "export/latency_ms", "mode": "min"}], "params": POOLING}
    message = schema_error({**asha, "scheduler": {"kind": "asha"}})
    assert "export/latency_ms is measured once" in message and "kind none" in message


def test_export_objective_needs_a_format_to_export(base: ReidConfig) -> None:
    latency = [{"metric": "export/latency_ms", "mode": "min"}]
    silent = apply_settings(base, {"export.formats": []})
    message = check_error(POOLING, silent, objectives=latency, scheduler={"kind": "none"})
    assert "export/latency_ms" in message and "export.formats is empty" in message
    fixed = {"export.formats": ["onnx"]}
    check_search_space(
        space(POOLING, objectives=latency, scheduler={"kind": "none"}, fixed=fixed), silent
    )


def test_two_objectives_need_distinct_metrics_and_no_asha() -> None:
    two = [{"metric": "eval/mAP"}, {"metric": "model/params", "mode": "min"}]
    assert space(POOLING, objectives=two).objectives[1].mode == "min"
    same = [{"metric": "eval/mAP"}, {"metric": "eval/mAP", "mode": "min"}]
    assert "listed twice" in schema_error({"objectives": same, "params": POOLING})
    asha = {"kind": "asha"}
    message = schema_error({"objectives": two, "scheduler": asha, "params": POOLING})
    assert "asha needs a single objective" in message


def test_fixed_keys_must_be_config_paths_and_not_searched() -> None:
    message = schema_error({"fixed": {"solver.max_epoch": 2}, "params": POOLING})
    assert "fixed setting `solver.max_epoch` is not a config path" in message
    message = schema_error({"fixed": {"model.pooling.kind": "avg"}, "params": POOLING})
    assert "`model.pooling.kind` is both fixed and searched" in message


def test_contains_matches_each_distribution_by_hand() -> None:
    params = read_search_space(
        {
            "params": {
                "training.channels_last": {"type": "choice", "values": [True, 1]},
                "solver.max_epochs": {"type": "int", "low": 2, "high": 8, "step": 3},
                "losses.cross_entropy.epsilon": {
                    "type": "quantized",
                    "low": 0.0,
                    "high": 0.3,
                    "q": 0.1,
                },
                "solver.optimizer.base_lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
            }
        }
    ).params
    choice, integer = params["training.channels_last"], params["solver.max_epochs"]
    quantized, log = params["losses.cross_entropy.epsilon"], params["solver.optimizer.base_lr"]
    assert contains(choice, True) and contains(choice, 1) and not contains(choice, False)
    assert [v for v in range(0, 10) if contains(integer, v)] == [2, 5, 8]
    assert not contains(integer, 5.0) and not contains(integer, True)
    assert contains(quantized, 0.2) and contains(quantized, 0.30000000000000004)
    assert not contains(quantized, 0.15) and not contains(quantized, 0.4)
    assert contains(log, 1e-3) and not contains(log, 0.5) and not contains(log, "0.001")


# --- condition analysis --------------------------------------------------------------------


def test_condition_order_puts_conditions_first_and_keeps_file_order() -> None:
    chained = space(
        {
            "losses.triplet.margin": {
                "type": "uniform",
                "low": 0.1,
                "high": 0.5,
                "when": {"losses.triplet.margin_kind": ["fixed"]},
            },
            "model.pooling.kind": POOLING["model.pooling.kind"],
            "losses.triplet.margin_kind": {
                "type": "choice",
                "values": ["fixed", "soft"],
                "when": {"losses.triplet.enabled": [True]},
            },
            "losses.triplet.enabled": {"type": "choice", "values": [False, True]},
        }
    )
    assert condition_order(chained) == [
        "losses.triplet.enabled",
        "losses.triplet.margin_kind",
        "losses.triplet.margin",
        "model.pooling.kind",
    ]
    order = condition_order(chained)
    # The first choices that make the margin exist: enabled must be True (not the first value).
    assert witness(chained, "losses.triplet.margin", order) == {
        "losses.triplet.enabled": True,
        "losses.triplet.margin_kind": "fixed",
    }


# --- checks against the config -------------------------------------------------------------


def test_shipped_quickstart_passes_against_its_experiment(base: ReidConfig) -> None:
    check_search_space(load_search_space(REPO / "search_spaces" / "quickstart.yaml"), base)


@pytest.mark.parametrize(
    ("name", "experiment"),
    [(name, experiment) for name, experiments in SHIPPED.items() for experiment in experiments],
)
def test_shipped_spaces_pass_against_their_experiments(name: str, experiment: str) -> None:
    loaded = load_search_space(REPO / "search_spaces" / f"{name}.yaml")
    check_search_space(loaded, load_config(REPO / "experiments" / f"{experiment}.yaml"))


def test_shipped_spaces_cover_the_issue(base: ReidConfig) -> None:
    quick = load_search_space(REPO / "search_spaces" / "quickstart.yaml")
    assert quick.num_samples >= 4
    searched = set(quick.params)
    assert {"model.pooling.kind", "model.classifier.kind", "losses.triplet.enabled"} <= searched
    architecture = load_search_space(REPO / "search_spaces" / "architecture.yaml")
    assert len(architecture.seed_points) == 3  # BoT, AGW, SBS
    # SBS's seed point carries the recipe of experiments/sbs_r50.yaml.
    sbs = load_config(REPO / "experiments" / "sbs_r50.yaml")
    bot = load_config(REPO / "experiments" / "bot_r50.yaml")
    assert apply_settings(bot, architecture.seed_points[2]).model == sbs.model
    agw = load_config(REPO / "experiments" / "agw_r50.yaml")
    assert apply_settings(bot, architecture.seed_points[1]).model == agw.model
    assert apply_settings(bot, architecture.seed_points[1]).losses == agw.losses
    assert apply_settings(bot, architecture.seed_points[0]) == bot


def test_choice_the_config_refuses_names_key_and_value(base: ReidConfig) -> None:
    params = {"model.pooling.kind": {"type": "choice", "values": ["avg", "foo"]}}
    message = check_error(params, base)
    assert message.startswith("search parameter model.pooling.kind: choice 'foo' is not accepted")
    assert "model.pooling.kind" in message.split("(", 1)[1]  # the config's own reason


def test_bound_the_config_refuses_names_key_and_bound(base: ReidConfig) -> None:
    params = {"losses.cross_entropy.epsilon": {"type": "uniform", "low": 0.0, "high": 1.5}}
    message = check_error(params, base)
    assert message.startswith(
        "search parameter losses.cross_entropy.epsilon: high 1.5 is not accepted"
    )


def test_float_range_on_an_int_setting_is_refused(base: ReidConfig) -> None:
    params = {"training.eval_period": {"type": "uniform", "low": 2.0, "high": 4.0}}
    assert "search parameter training.eval_period: low 2.0" in check_error(params, base)


@pytest.mark.parametrize(
    "key", ["solver.max_epochs", "distributed.num_workers", "distributed.cpus_per_worker"]
)
def test_settings_the_driver_reads_once_cannot_be_searched(base: ReidConfig, key: str) -> None:
    # Values the config itself accepts: the refusal is about searching them at all.
    params = {**POOLING, key: {"type": "int", "low": 1, "high": 2}}
    message = check_error(params, base)
    assert message.startswith(f"search parameter {key} cannot be searched")
    assert "under `fixed`" in message


def test_eval_objective_needs_a_validation_split(base: ReidConfig) -> None:
    assert base.data.validation.num_ids is not None  # the quickstart holds 12 ids out
    without = apply_settings(base, {"data.validation.num_ids": None})
    message = check_error(POOLING, without)
    assert message.startswith("objective eval/mAP needs a validation split")
    assert "data.validation" in message
    # model/params needs no validation split; a fixed split satisfies eval/*.
    check_search_space(space(POOLING, objectives=[{"metric": "model/params"}]), without)
    check_search_space(space(POOLING, fixed={"data.validation.fraction": 0.2}), without)


def test_fixed_setting_the_config_refuses_names_it(base: ReidConfig) -> None:
    message = check_error(POOLING, base, fixed={"training.eval_period": 1, "solver.max_epochs": 0})
    assert message.startswith("fixed setting solver.max_epochs=0 is not accepted by the config")


def test_fixed_settings_reach_the_value_checks(base: ReidConfig) -> None:
    # delay_epochs 5 is fine with the quickstart's 6 epochs, not with the fixed 4.
    params = {"solver.schedule.cosine.delay_epochs": {"type": "int", "low": 0, "high": 5}}
    check_search_space(space(params), base)
    message = check_error(params, base, fixed={"solver.max_epochs": 4})
    assert "search parameter solver.schedule.cosine.delay_epochs: high 5" in message


def test_condition_on_a_value_never_taken_is_impossible(base: ReidConfig) -> None:
    margin = {**ARCFACE_MARGIN, "when": {"model.classifier.kind": ["arcfce"]}}
    params = {"model.classifier.kind": CLASSIFIER, "model.classifier.arcface.margin": margin}
    message = check_error(params, base)
    assert message.startswith(
        "search parameter model.classifier.arcface.margin: impossible condition"
    )
    assert "'arcfce'" in message


def test_condition_on_a_numeric_parameter_is_impossible(base: ReidConfig) -> None:
    params = {
        "losses.triplet.weight": {"type": "uniform", "low": 0.5, "high": 2.0},
        "losses.triplet.margin": {
            "type": "uniform",
            "low": 0.1,
            "high": 0.5,
            "when": {"losses.triplet.weight": [1.0]},
        },
    }
    message = check_error(params, base)
    assert message.startswith("search parameter losses.triplet.margin: impossible condition")
    assert "losses.triplet.weight, a uniform parameter" in message


def test_cycle_of_conditions_is_impossible(base: ReidConfig) -> None:
    params = {
        "model.pooling.kind": {
            **POOLING["model.pooling.kind"],
            "when": {"model.classifier.kind": ["linear"]},
        },
        "model.classifier.kind": {**CLASSIFIER, "when": {"model.pooling.kind": ["avg"]}},
    }
    message = check_error(params, base)
    assert "impossible condition" in message and "depends on itself" in message
    assert "model.pooling.kind → model.classifier.kind → model.pooling.kind" in message


def test_chain_that_can_never_hold_is_impossible(base: ReidConfig) -> None:
    # margin_kind exists only with triplet enabled, but the margin asks for it with triplet off.
    params = {
        "losses.triplet.enabled": {"type": "choice", "values": [True, False]},
        "losses.triplet.margin_kind": {
            "type": "choice",
            "values": ["fixed", "soft"],
            "when": {"losses.triplet.enabled": [True]},
        },
        "losses.triplet.margin": {
            "type": "uniform",
            "low": 0.1,
            "high": 0.5,
            "when": {"losses.triplet.margin_kind": ["fixed"], "losses.triplet.enabled": [False]},
        },
    }
    message = check_error(params, base)
    assert message.startswith("search parameter losses.triplet.margin: impossible condition")


def test_seed_point_naming_an_unsearched_key_is_refused(base: ReidConfig) -> None:
    message = check_error(
        POOLING, base, seed_points=[{"model.pooling.kind": "avg"}, {"solver.max_epochs": 3}]
    )
    assert message == "seed point 2 names solver.max_epochs, which is not a searched parameter"


def test_seed_point_outside_its_distribution_is_refused(base: ReidConfig) -> None:
    params = {
        "model.classifier.kind": CLASSIFIER,
        "model.classifier.arcface.margin": ARCFACE_MARGIN,
    }
    point = {"model.classifier.kind": "arcface", "model.classifier.arcface.margin": 0.9}
    message = check_error(params, base, seed_points=[point])
    assert message.startswith("seed point 1: model.classifier.arcface.margin=0.9 is outside")
    assert message.endswith("(uniform [0.2, 0.6])")


def test_seed_point_breaking_a_condition_is_refused(base: ReidConfig) -> None:
    params = {
        "model.classifier.kind": CLASSIFIER,
        "model.classifier.arcface.margin": ARCFACE_MARGIN,
    }
    for point in (
        {"model.classifier.kind": "circle", "model.classifier.arcface.margin": 0.3},
        {"model.classifier.arcface.margin": 0.3},
    ):
        message = check_error(params, base, seed_points=[point])
        assert message.startswith(
            "seed point 1 sets model.classifier.arcface.margin, but its condition"
        )


def test_seed_point_the_config_refuses_as_a_whole_is_refused(base: ReidConfig) -> None:
    # Each value alone is fine (the other loss stays on); together no loss is left.
    params = {
        "losses.cross_entropy.enabled": {"type": "choice", "values": [True, False]},
        "losses.triplet.enabled": {"type": "choice", "values": [True, False]},
    }
    check_search_space(space(params), base)
    point = {"losses.cross_entropy.enabled": False, "losses.triplet.enabled": False}
    message = check_error(params, base, seed_points=[point])
    assert message.startswith("seed point 1 (losses.cross_entropy.enabled=False) is not accepted")
    assert "enable at least one loss term" in message
