"""Flattened params: dotted keys equal to override paths, inactive variant blocks left out."""

from reid_platform.config import apply_override, config_from_mapping, config_hash, flatten

MINIMAL = {
    "seed": 0,
    "data": {
        "train": [{"name": "cuhk03", "root": "r", "cuhk03": {"variant": "detected"}}],
        "test": [{"name": "market1501", "root": "r"}],
    },
    "model": {"pooling": {"kind": "gem", "gem": {"p": 4.0}}, "classifier": {"kind": "circle"}},
}


def test_flat_keys_are_override_paths() -> None:
    flat = flatten(config_from_mapping(MINIMAL))
    assert flat["seed"] == "0"
    assert flat["model.pooling.gem.p"] == "4.0"
    assert flat["data.train.0.cuhk03.variant"] == "detected"
    assert flat["input.size_train"] == "[256, 128]"
    assert flat["model.backbone.pretrained.path"] == "null"
    # every flat key can be fed back as an override and gives the same config
    config = config_from_mapping(MINIMAL)
    raw = dict(MINIMAL)
    for key in ("model.pooling.gem.p", "data.train.0.cuhk03.variant", "solver.max_epochs"):
        raw = apply_override(raw, f"{key}={flat[key]}")
    assert config_from_mapping(raw) == config


def test_inactive_variant_blocks_are_skipped() -> None:
    flat = flatten(config_from_mapping(MINIMAL))
    assert not any(key.startswith("model.pooling.clipped_avg") for key in flat)
    assert not any(key.startswith("model.classifier.arcface") for key in flat)
    assert "model.classifier.circle.margin" in flat
    assert not any(key.startswith("data.train.0.msmt17") for key in flat)
    assert not any(key.startswith("data.test.0.cuhk03") for key in flat)


def test_hash_changes_with_content_only() -> None:
    first = config_from_mapping(MINIMAL)
    again = config_from_mapping(MINIMAL)
    other = config_from_mapping(MINIMAL, ["seed=1"])
    assert config_hash(first) == config_hash(again)
    assert config_hash(first) != config_hash(other)
