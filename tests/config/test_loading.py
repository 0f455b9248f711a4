"""Config loading: base merge, overrides, strict validation and the one-sentence errors."""

from pathlib import Path

import pytest
import yaml

from reid_platform.config import ReidConfig, apply_override, load_config, to_yaml
from reid_platform.config.loading import merge, parse_override
from reid_platform.errors import ConfigError

MINIMAL = {
    "seed": 3,
    "data": {
        "train": [{"name": "market1501", "root": "data/m"}],
        "test": [{"name": "market1501", "root": "data/m"}],
    },
}


def write(path: Path, mapping: dict) -> Path:
    path.write_text(yaml.safe_dump(mapping))
    return path


def error_of(path: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return str(caught.value)


def test_minimal_config_fills_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.yaml", MINIMAL))
    assert config.seed == 3
    assert config.data.train[0].root == "data/m"
    assert config.solver.optimizer.kind == "adam"
    assert config.model.backbone.name == "resnet50"
    # Post-processing defaults are FastReID's config defaults (notes §3.4-3.5).
    expansion, rerank = config.evaluation.query_expansion, config.evaluation.rerank
    assert (expansion.times, expansion.k, expansion.alpha) == (1, 5, 3.0)
    assert (rerank.k1, rerank.k2, rerank.lambda_value) == (20, 6, 0.3)


def test_merge_is_deep_and_replaces_lists() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 4}
    update = {"a": {"c": [9]}, "e": 5}
    assert merge(base, update) == {"a": {"b": 1, "c": [9]}, "d": 4, "e": 5}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 4}


def test_base_file_is_merged_under_child(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", {**MINIMAL, "solver": {"max_epochs": 7}})
    child = write(
        tmp_path / "child.yaml", {"base": "base.yaml", "solver": {"optimizer": {"base_lr": 0.01}}}
    )
    config = load_config(child)
    assert config.solver.max_epochs == 7
    assert config.solver.optimizer.base_lr == pytest.approx(0.01)
    assert config.seed == 3


def test_base_of_a_base_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "root.yaml", MINIMAL)
    write(tmp_path / "middle.yaml", {"base": "root.yaml"})
    child = write(tmp_path / "child.yaml", {"base": "middle.yaml"})
    assert "may not name a base" in error_of(child)


def test_override_parsing_types() -> None:
    assert parse_override("solver.optimizer.base_lr=3.5e-4") == (
        ["solver", "optimizer", "base_lr"],
        3.5e-4,
    )
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=resnet50") == (["a"], "resnet50")
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        parse_override("no_equals_sign")


def test_overrides_reach_nested_and_list_items(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", MINIMAL)
    config = load_config(
        path,
        [
            "solver.optimizer.base_lr=1e-4",
            "data.train.0.root=/elsewhere",
            "model.classifier.kind=arcface",
            "model.classifier.arcface.margin=0.4",
            "input.size_train=[384, 128]",
        ],
    )
    assert config.solver.optimizer.base_lr == pytest.approx(1e-4)
    assert config.data.train[0].root == "/elsewhere"
    assert config.model.classifier.arcface.margin == pytest.approx(0.4)
    assert config.input.size_train == (384, 128)


def test_override_of_list_item_out_of_range(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "c.yaml", MINIMAL), "data.train.3.root=x")
    assert "data.train.3" in message


def test_override_through_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"`seed` is a value"):
        apply_override({"seed": 1}, "seed.x=2")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("modle.backbone.name=resnet50", ["`modle` is unknown", "'model'"]),
        ("model.backbone.nmae=resnet50", ["`model.backbone.nmae` is unknown", "'name'"]),
        ("model.pooling.kind=gme", ["`model.pooling.kind`", "'gem'"]),
        ("model.backbone.name=resnet5", ["`model.backbone.name`", "'resnet50'"]),
        ("solver.optimizer.base_lr=fast", ["`solver.optimizer.base_lr`", "number", "'fast'"]),
        ("solver.max_epochs=3.5", ["`solver.max_epochs`", "integer"]),
        ("data.train.0.root=3", ["`data.train.0.root`", "string"]),
        ("input.flip.enabled=1", ["`input.flip.enabled`", "boolean"]),
        ("data.sampler.num_instances=5", ["multiple of sampler.num_instances"]),
        ("data.validation.num_ids=3", []),
    ],
)
def test_errors_name_the_dotted_key(tmp_path: Path, override: str, expected: list[str]) -> None:
    path = write(tmp_path / "c.yaml", MINIMAL)
    if not expected:
        load_config(path, [override])
        return
    message = error_of(path, override)
    for fragment in expected:
        assert fragment in message
    assert "\n" not in message
    assert str(path) in message


def test_strings_are_not_numbers_in_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {**MINIMAL, "seed": "3"})
    assert "`seed`" in error_of(path)


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {"seed": 1})
    assert "`data` is required" in error_of(path)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    assert "does not exist" in error_of(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    assert "not valid YAML" in error_of(bad)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.yaml", MINIMAL))
    with pytest.raises(Exception, match="frozen"):
        config.seed = 4  # type: ignore[misc]


def test_yaml_dump_round_trips(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.yaml", MINIMAL), ["model.pooling.kind=gem"])
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(to_yaml(config))
    assert load_config(dumped) == config
    assert isinstance(config, ReidConfig)
