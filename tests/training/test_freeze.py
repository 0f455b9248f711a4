"""Freeze really freezes (weights and BN statistics unchanged) and then releases."""

import pytest
import torch
from torch import Tensor, nn
from torch.nn.functional import cross_entropy

from reid_platform.errors import ConfigError
from reid_platform.training.freeze import ModuleFreeze

FREEZE_ITERS = 3


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    """Parameters and buffers (BN running mean/var and batch counts), copied."""
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def changed(before: dict[str, Tensor], module: nn.Module) -> set[str]:
    return {
        name for name, value in module.state_dict().items() if not torch.equal(before[name], value)
    }


def train_steps(model, optimizer, freeze, batch, iterations: range) -> None:
    for iteration in iterations:
        model.train()  # as a loop does after each evaluation: must not unfreeze BN
        freeze.update(iteration)
        images, targets = batch(4, seed=iteration)
        loss = cross_entropy(model(images, targets).logits[0], targets)
        assert loss.item() > 0
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_frozen_backbone_is_unchanged_until_release(baseline, batch) -> None:
    model = baseline()
    # Momentum and weight decay would move a parameter with a zero gradient; it must have none.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    freeze = ModuleFreeze(model=model, module_names=["backbone"], iters=FREEZE_ITERS)
    backbone_before, head_before = snapshot(model.backbone), snapshot(model.head)

    train_steps(model, optimizer, freeze, batch, range(FREEZE_ITERS))

    assert freeze.frozen
    assert changed(backbone_before, model.backbone) == set()
    assert "classifier.weight" in changed(head_before, model.head)
    assert "neck.bn.running_mean" in changed(head_before, model.head)

    released_from = snapshot(model.backbone)
    train_steps(model, optimizer, freeze, batch, range(FREEZE_ITERS, FREEZE_ITERS + 2))

    assert not freeze.frozen
    moved = changed(released_from, model.backbone)
    assert {"conv1.weight", "layer1.0.0.weight", "layer4.0.0.weight"} <= moved
    assert {"bn1.running_mean", "bn1.running_var", "layer2.0.1.num_batches_tracked"} <= moved
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert model.backbone.bn1.training


def test_bn_stays_in_eval_after_model_train(baseline, batch) -> None:
    model = baseline().train()
    freeze = ModuleFreeze(model=model, module_names=["backbone"], iters=1)
    freeze.update(0)
    assert not model.backbone.bn1.training
    model.train()
    images, targets = batch()
    model(images, targets)
    assert not model.backbone.bn1.training  # the pre-forward hook put it back
    assert model.head.neck.bn.training
    freeze.update(1)
    assert model.backbone.bn1.training


def test_release_keeps_parameters_frozen_by_design(baseline) -> None:
    model = baseline()
    assert not model.head.neck.bn.bias.requires_grad  # BNNeck's bias never trains
    freeze = ModuleFreeze(model=model, module_names=["head.neck"], iters=2)
    freeze.update(0)
    assert not model.head.neck.bn.weight.requires_grad
    freeze.update(2)
    assert model.head.neck.bn.weight.requires_grad
    assert not model.head.neck.bn.bias.requires_grad


def test_resume_inside_and_after_the_freeze_window(baseline) -> None:
    model = baseline()
    freeze = ModuleFreeze(model=model, module_names=["backbone"], iters=5)
    freeze.update(4)
    assert not model.backbone.conv1.weight.requires_grad
    freeze.update(4)  # idempotent
    freeze.update(5)
    assert model.backbone.conv1.weight.requires_grad
    late = ModuleFreeze(model=baseline(), module_names=["backbone"], iters=5)
    late.update(9)
    assert not late.frozen


def test_mgn_heads_are_not_frozen_with_their_branches(mgn) -> None:
    # The reference's regex froze b1_head … b33_head along with b1, b2, b3.
    model = mgn()
    freeze = ModuleFreeze(model=model, module_names=["backbone", "b1", "b2", "b3"], iters=10)
    freeze.update(0)
    for name, parameter in model.named_parameters():
        top = name.split(".")[0]
        if top in ("backbone", "b1", "b2", "b3"):
            assert not parameter.requires_grad, name
        elif not name.endswith("neck.bn.bias"):  # frozen by design
            assert parameter.requires_grad, name
    assert model.b1_head.neck.bn.training and not model.b1[1][0][1].training


def test_unknown_module_name_lists_close_matches(baseline) -> None:
    with pytest.raises(ConfigError, match=r"'bakbone'.*did you mean 'backbone'"):
        ModuleFreeze(model=baseline(), module_names=["bakbone"], iters=3)
    with pytest.raises(ConfigError, match=r"'backbone' or 'head'"):
        ModuleFreeze(model=baseline(), module_names=["zzz"], iters=3)
