"""Parameter groups: every parameter exactly once, with the expected LR and weight decay."""

import pytest
import torch
from torch import nn

from reid_platform.config.loading import validate_section
from reid_platform.config.solver import OptimizerConfig
from reid_platform.modeling.mgn import HEAD_NAMES
from reid_platform.training.build import build_optimizer
from reid_platform.training.param_groups import head_module_names, parameter_groups

# Distinct values, so each expectation pins down one rule.
BASE_LR, WD, WD_NORM, WD_BIAS, BIAS_FACTOR, HEADS_FACTOR = 1e-3, 5e-4, 1e-5, 2e-4, 2.0, 10.0


def groups_of(model: nn.Module, head_modules: tuple[str, ...]) -> list[dict]:
    return parameter_groups(
        model,
        base_lr=BASE_LR,
        weight_decay=WD,
        weight_decay_norm=WD_NORM,
        weight_decay_bias=WD_BIAS,
        bias_lr_factor=BIAS_FACTOR,
        heads_lr_factor=HEADS_FACTOR,
        head_modules=head_modules,
    )


def settings_by_name(model: nn.Module, groups: list[dict]) -> dict[str, tuple[str, float, float]]:
    """parameter name → (group name, lr, weight decay); fails on a parameter in two groups."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    found: dict[str, tuple[str, float, float]] = {}
    for group in groups:
        for parameter in group["params"]:
            name = name_of[id(parameter)]
            assert name not in found, f"{name} is in two groups"
            found[name] = (group["name"], group["lr"], group["weight_decay"])
    return found


def test_baseline_parameters_by_name(baseline) -> None:
    model = baseline()
    assert head_module_names(model) == ("head",)
    found = settings_by_name(model, groups_of(model, ("head",)))
    assert set(found) == {n for n, _ in model.named_parameters()}
    expected = {
        "backbone.conv1.weight": ("body/weight", 1e-3, 5e-4),
        "backbone.conv1.bias": ("body/bias", 2e-3, 2e-4),
        "backbone.bn1.weight": ("body/norm_weight", 1e-3, 1e-5),
        "backbone.bn1.bias": ("body/norm_bias", 2e-3, 1e-5),
        "backbone.layer3.1.0.weight": ("body/weight", 1e-3, 5e-4),
        "backbone.layer3.1.1.bias": ("body/norm_bias", 2e-3, 1e-5),
        "head.pooling.p": ("head/weight", 1e-2, 5e-4),
        "head.neck.bn.weight": ("head/norm_weight", 1e-2, 1e-5),
        # Frozen by design (requires_grad False) and still grouped.
        "head.neck.bn.bias": ("head/norm_bias", 2e-2, 1e-5),
        "head.classifier.weight": ("head/weight", 1e-2, 5e-4),
    }
    for name, (group, lr, wd) in expected.items():
        assert found[name][0] == group, name
        assert found[name][1:] == pytest.approx((lr, wd), rel=1e-12), name
    assert not model.head.neck.bn.bias.requires_grad


def test_groups_carry_their_factor_and_no_empty_group(baseline) -> None:
    groups = groups_of(baseline(), ("head",))
    assert all(group["params"] for group in groups)
    assert len({group["name"] for group in groups}) == len(groups)
    for group in groups:
        assert group["lr"] == pytest.approx(BASE_LR * group["lr_factor"], rel=1e-12)


def test_mgn_heads_are_the_eight_embedding_heads(mgn) -> None:
    model = mgn()
    heads = head_module_names(model)
    assert heads == tuple(f"{name}_head" for name in HEAD_NAMES)
    found = settings_by_name(model, groups_of(model, heads))
    assert set(found) == {n for n, _ in model.named_parameters()}
    for name, (group, _, _) in found.items():
        top = name.split(".")[0]
        assert group.startswith("head/") == top.endswith("_head"), name
    # The branches are backbone copies: base LR, not the heads factor.
    assert found["b1.1.0.0.weight"] == ("body/weight", BASE_LR, WD)
    assert found["b33_head.classifier.weight"][1] == pytest.approx(1e-2)


def test_shared_parameters_are_grouped_once() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight
    groups = groups_of(model, ())
    params = [p for group in groups for p in group["params"]]
    assert len(params) == len({id(p) for p in params}) == 3


def test_other_norm_layers_take_the_norm_decay() -> None:
    model = nn.Sequential(
        nn.Linear(2, 4), nn.LayerNorm(4), nn.GroupNorm(2, 4), nn.InstanceNorm1d(4, affine=True)
    )
    found = settings_by_name(model, groups_of(model, ()))
    for index in (1, 2, 3):
        assert found[f"{index}.weight"][0] == "body/norm_weight"
        assert found[f"{index}.bias"][0] == "body/norm_bias"
    assert found["0.bias"][0] == "body/bias"


def test_unknown_head_module_is_refused(baseline) -> None:
    with pytest.raises(ValueError, match="heads"):
        groups_of(baseline(), ("heads",))


@pytest.mark.parametrize(
    ("kind", "optimizer_type"),
    [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)],
)
def test_build_optimizer_uses_the_kinds_block(baseline, kind, optimizer_type) -> None:
    raw = {
        "kind": kind,
        "base_lr": BASE_LR,
        "weight_decay": WD,
        "weight_decay_norm": WD_NORM,
        "weight_decay_bias": WD_BIAS,
        "bias_lr_factor": BIAS_FACTOR,
        "heads_lr_factor": HEADS_FACTOR,
        "sgd": {"momentum": 0.8, "nesterov": True},
        "adam": {"betas": [0.8, 0.99], "eps": 1e-7},
        "adamw": {"betas": [0.7, 0.98], "eps": 1e-6},
    }
    model = baseline()
    optimizer = build_optimizer(validate_section(OptimizerConfig, raw, "test"), model)
    assert type(optimizer) is optimizer_type
    group = optimizer.param_groups[0]
    if kind == "sgd":
        assert (group["momentum"], group["nesterov"]) == (0.8, True)
    else:
        betas = (0.8, 0.99) if kind == "adam" else (0.7, 0.98)
        assert group["betas"] == pytest.approx(betas) and group["eps"] == raw[kind]["eps"]
    by_name = {g["name"]: g for g in optimizer.param_groups}
    assert by_name["head/bias" if "head/bias" in by_name else "head/norm_bias"]["lr"] == 2e-2
    assert by_name["body/norm_weight"]["weight_decay"] == WD_NORM
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
