"""build_loss: enabled terms only, weights applied, tuple averaging, and clear input errors."""

import logging

import pytest
import torch
from torch import Tensor

from reid_platform.config.losses import (
    CrossEntropyConfig,
    LossesConfig,
    PairwiseMarginConfig,
    TripletConfig,
)
from reid_platform.losses import (
    BatchHardMiner,
    CosineDistance,
    CrossEntropyLoss,
    EuclideanDistance,
    LossTerm,
    NormalizedDistance,
    PairwiseCircleLoss,
    PairwiseCosFaceLoss,
    ReidLoss,
    TripletLoss,
    WeightedMiner,
    build_loss,
    build_triplet,
)
from reid_platform.modeling.output import ModelOutput

TARGETS = torch.arange(4).repeat_interleave(3)


def _output(num_logits: int = 1, num_features: int = 1, seed: int = 0) -> ModelOutput:
    generator = torch.Generator().manual_seed(seed)
    return ModelOutput(
        embedding=torch.randn(12, 8, generator=generator),
        logits=tuple(torch.randn(12, 4, generator=generator) for _ in range(num_logits)),
        metric_features=tuple(torch.randn(12, 8, generator=generator) for _ in range(num_features)),
    )


def _all_enabled(weight: float = 1.0) -> LossesConfig:
    return LossesConfig(
        cross_entropy=CrossEntropyConfig(enabled=True, weight=weight, epsilon=0.1),
        triplet=TripletConfig(enabled=True, weight=weight),
        pairwise_circle=PairwiseMarginConfig(enabled=True, weight=weight),
        pairwise_cosface=PairwiseMarginConfig(enabled=True, weight=weight, margin=0.35),
    )


def test_default_config_is_cross_entropy_only() -> None:
    terms = build_loss(LossesConfig())(_output(), TARGETS)
    assert list(terms) == ["cross_entropy"]
    expected = CrossEntropyLoss(epsilon=0.1)(_output().logits[0], TARGETS)
    torch.testing.assert_close(terms["cross_entropy"], expected)


def test_disabled_terms_are_absent() -> None:
    config = LossesConfig(
        cross_entropy=CrossEntropyConfig(enabled=False),
        pairwise_cosface=PairwiseMarginConfig(enabled=True),
    )
    assert list(build_loss(config)(_output(), TARGETS)) == ["pairwise_cosface"]


def test_every_term_is_named_finite_and_weighted() -> None:
    unweighted = build_loss(_all_enabled(1.0))(_output(), TARGETS)
    weighted = build_loss(_all_enabled(0.5))(_output(), TARGETS)
    assert list(unweighted) == ["cross_entropy", "triplet", "pairwise_circle", "pairwise_cosface"]
    for name, value in unweighted.items():
        assert value.shape == () and torch.isfinite(value)
        torch.testing.assert_close(weighted[name], 0.5 * value)


def test_terms_match_the_components_they_are_built_from() -> None:
    output = _output()
    terms = build_loss(_all_enabled())(output, TARGETS)
    logits, features = output.logits[0], output.metric_features[0]
    triplet = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=0.3)
    expected = {
        "cross_entropy": CrossEntropyLoss(epsilon=0.1)(logits, TARGETS),
        "triplet": triplet(features, TARGETS),
        "pairwise_circle": PairwiseCircleLoss(scale=64.0, margin=0.25)(features, TARGETS),
        "pairwise_cosface": PairwiseCosFaceLoss(scale=64.0, margin=0.35)(features, TARGETS),
    }
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value)


def test_tuples_are_averaged_like_the_reference_mgn_weights() -> None:
    # MGN: 8 logits tensors and 5 metric features; each term counts 1/8 resp. 1/5.
    output = _output(num_logits=8, num_features=5, seed=3)
    config = LossesConfig(triplet=TripletConfig(enabled=True, weight=2.0))
    terms = build_loss(config)(output, TARGETS)
    ce = CrossEntropyLoss(epsilon=0.1)
    triplet = TripletLoss(distance=EuclideanDistance(), miner=BatchHardMiner(), margin=0.3)
    expected_ce = sum(0.125 * ce(logits, TARGETS) for logits in output.logits)
    expected_triplet = 2.0 * sum(0.2 * triplet(f, TARGETS) for f in output.metric_features)
    torch.testing.assert_close(terms["cross_entropy"], expected_ce)
    torch.testing.assert_close(terms["triplet"], expected_triplet)


def test_two_logits_give_the_mean_of_two_cross_entropies() -> None:
    output = _output(num_logits=2)
    ce = CrossEntropyLoss(epsilon=0.1)
    expected = (ce(output.logits[0], TARGETS) + ce(output.logits[1], TARGETS)) / 2
    torch.testing.assert_close(
        build_loss(LossesConfig())(output, TARGETS)["cross_entropy"], expected
    )


def test_gradients_reach_every_input() -> None:
    output = _output(num_logits=2, num_features=2)
    for tensor in (*output.logits, *output.metric_features):
        tensor.requires_grad_(True)
    terms = build_loss(_all_enabled())(output, TARGETS)
    torch.stack(list(terms.values())).sum().backward()
    for tensor in (*output.logits, *output.metric_features):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
        assert tensor.grad.abs().sum() > 0


def test_missing_logits_is_a_clear_error() -> None:
    output = ModelOutput(embedding=torch.zeros(12, 8), metric_features=(torch.zeros(12, 8),))
    with pytest.raises(ValueError, match=r"cross_entropy loss needs the model's classifier logits"):
        build_loss(LossesConfig())(output, TARGETS)


def test_missing_metric_features_is_a_clear_error() -> None:
    config = LossesConfig(triplet=TripletConfig(enabled=True))
    output = ModelOutput(embedding=torch.zeros(12, 8), logits=(torch.zeros(12, 4),))
    with pytest.raises(ValueError, match=r"triplet loss needs the model's metric features"):
        build_loss(config)(output, TARGETS)


@pytest.mark.parametrize(
    ("config", "distance", "miner", "margin"),
    [
        (TripletConfig(), EuclideanDistance(), BatchHardMiner(), 0.3),
        (
            TripletConfig(margin_kind="soft", margin=0.7),
            EuclideanDistance(),
            BatchHardMiner(),
            None,
        ),
        (TripletConfig(miner="weighted", margin=0.5), EuclideanDistance(), WeightedMiner(), 0.5),
        (TripletConfig(distance="cosine"), CosineDistance(), BatchHardMiner(), 0.3),
        (
            TripletConfig(normalize_features=True),
            NormalizedDistance(EuclideanDistance()),
            BatchHardMiner(),
            0.3,
        ),
    ],
)
def test_triplet_config_maps_to_components(
    config: TripletConfig, distance: object, miner: object, margin: float | None
) -> None:
    loss = build_triplet(config)
    assert loss.distance == distance
    assert loss.miner == miner
    assert loss.margin == margin


def test_build_logs_the_terms(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="reid_platform.losses.build"):
        build_loss(_all_enabled(0.5))
    assert "triplet: weight=0.5 on metric_features" in caplog.text


def test_reid_loss_needs_a_term() -> None:
    with pytest.raises(ValueError, match="at least one term"):
        ReidLoss({})


def test_reid_loss_composes_without_a_config() -> None:
    loss = ReidLoss(
        {"ce": LossTerm(loss=CrossEntropyLoss(), weight=3.0, source="logits")},
    )
    output = _output()
    value: Tensor = loss(output, TARGETS)["ce"]
    torch.testing.assert_close(value, 3.0 * CrossEntropyLoss()(output.logits[0], TARGETS))


def test_normalised_squared_euclidean_is_the_reference_norm_feat_distance() -> None:
    """FastReID's NORM_FEAT triplet distance is 2 − 2cos of the raw features."""
    from reid_platform.config.losses import TripletConfig
    from reid_platform.losses.build import build_triplet

    triplet = build_triplet(
        TripletConfig(enabled=True, distance="squared_euclidean", normalize_features=True)
    )
    features = torch.randn(6, 5, generator=torch.Generator().manual_seed(3))
    unit = features / features.norm(dim=1, keepdim=True)
    expected = 2 - 2 * unit @ unit.T
    assert torch.allclose(triplet.distance(features, features), expected, atol=1e-5)
