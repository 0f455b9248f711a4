"""Every YAML under experiments/ and search_spaces/ loads, validates and is smoke-built.

Stages that later issues build are reported as pending (xfail with the stage named), never
silently skipped.
"""

import importlib.util
from pathlib import Path

import pytest

from reid_platform.config import load_config
from reid_platform.config.loading import read_yaml_mapping, validate_section
from reid_platform.config.search import SearchSpaceConfig
from reid_platform.data.build import build_data
from reid_platform.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
SEARCH_SPACES = sorted((REPO / "search_spaces").glob("*.yaml"))
REQUIRED_PRESETS = {"bot_r50", "agw_r50", "sbs_r50", "veri_sbs_r50_ibn", "quickstart"}


def test_required_presets_exist() -> None:
    assert {path.stem for path in EXPERIMENTS} >= REQUIRED_PRESETS
    assert SEARCH_SPACES


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_validates(path: Path) -> None:
    config = load_config(path)
    assert config.data.train and config.data.test


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_data_stage(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthetic configs build their whole data stage; benchmark configs fail on the absent root."""
    monkeypatch.chdir(tmp_path)
    config = load_config(path)
    if all(d.name == "synthetic" for d in (*config.data.train, *config.data.test)):
        shrink = ["data.train.0.synthetic.ids=16", "data.test.0.synthetic.ids=16"]
        small = load_config(path, [*shrink, "data.validation.num_ids=2"])
        data = build_data(small.data)
        assert data.num_classes > 0 and len(data.val_query) > 0
    else:
        with pytest.raises(DatasetError, match="does not exist"):
            build_data(config.data)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_model_stage(path: Path) -> None:
    if importlib.util.find_spec("reid_platform.modeling") is None:
        pytest.xfail("pending: the model stage (reid_platform.modeling) arrives with issue 3")
    from reid_platform.modeling import build_model  # type: ignore[attr-defined]

    config = load_config(path, ["model.backbone.pretrained.cache_dir=null"])
    assert build_model(config.model, config.input, num_classes=10) is not None


@pytest.mark.parametrize("path", SEARCH_SPACES, ids=lambda p: p.stem)
def test_search_space_validates(path: Path) -> None:
    space = validate_section(SearchSpaceConfig, read_yaml_mapping(path), str(path))
    assert space.params


# The experiments each shipped space is meant to search (`reid search EXPERIMENT --space SPACE`).
SPACE_EXPERIMENTS = {
    "quickstart": ("quickstart",),
    "architecture": ("bot_r50", "agw_r50", "sbs_r50"),
    "loss_margins": ("bot_r50", "agw_r50", "sbs_r50", "quickstart"),
    "distill": ("distill_quickstart",),
}


def test_every_search_space_names_its_experiments() -> None:
    assert {path.stem for path in SEARCH_SPACES} == set(SPACE_EXPERIMENTS)


@pytest.mark.parametrize("path", SEARCH_SPACES, ids=lambda p: p.stem)
def test_search_space_fits_its_experiments(path: Path) -> None:
    """Every choice, bound and seed point is accepted by each experiment, and each seed point's
    model builds (a combination the config accepts can still fail at model build time)."""
    from reid_platform.config.search import load_search_space
    from reid_platform.config.search_check import check_search_space
    from reid_platform.distributed.search_space import seed_points, trial_config
    from reid_platform.modeling.build import build_model

    space = load_search_space(path)
    for name in SPACE_EXPERIMENTS[path.stem]:
        base = load_config(REPO / "experiments" / f"{name}.yaml")
        check_search_space(space, base)
        for point in seed_points(space):
            config = trial_config(base, space, point)
            assert build_model(config.model, config.input, num_classes=10) is not None
