"""Optimizer parameter groups with the reference's weight-decay and learning-rate rules.

Every parameter is classified by the module that directly owns it (`named_parameters(
recurse=False)`) and by its local name:

| role          | which parameters                                  | weight decay        | LR × |
|---------------|---------------------------------------------------|---------------------|------|
| `norm_weight` | any non-bias parameter of a normalisation layer   | `weight_decay_norm` | 1    |
| `norm_bias`   | `bias` of a normalisation layer                   | `weight_decay_norm` | bias |
| `bias`        | `bias` of any other layer                         | `weight_decay_bias` | bias |
| `weight`      | everything else (conv/linear weights, GeM's `p`)  | `weight_decay`      | 1    |

"bias" is `bias_lr_factor`; parameters inside a *head module* also get × `heads_lr_factor`.
Normalisation layers are BatchNorm/SyncBatchNorm/InstanceNorm (torch's `_NormBase`), GroupNorm,
LayerNorm and RMSNorm, subclasses included (timm's norm layers derive from these).

Differences from the reference (`get_default_optimizer_params`):
- it gives a norm layer's bias `weight_decay_bias` (its bias override wins over the norm rule);
  here all normalisation parameters share `weight_decay_norm`, the bias only taking the LR factor;
- it skips parameters with `requires_grad=False`; here every parameter is grouped, because
  `ModuleFreeze` turns `requires_grad` off at build time and back on later, and a parameter
  missing from the optimizer would silently never train. Parameters frozen by design (BNNeck's
  bias) are harmless in a group: they never get a gradient, and optimizers skip those;
- it makes one group per parameter; here there is one group per (part, role) that has
  parameters, named e.g. `head/bias`, so the optimizer state stays small and readable.

Which modules are heads is explicit: `head_module_names` (the model's `EmbeddingHead` children:
`head` for `ReidBaselineModel`, `b1_head` … `b33_head` for MGN). MGN's branches `b1`/`b2`/`b3`
are copies of backbone stages, initialised from the same pretrained weights, so they are *not*
heads: they train at the base LR like the shared trunk. (The reference applied the factor to
top-level modules named `heads`, which MGN does not have, so there it applied to nothing.)
"""

from collections.abc import Collection, Iterator
from typing import Any, Literal

from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from reid_platform.modeling.baseline import EmbeddingHead

ParamRole = Literal["weight", "bias", "norm_weight", "norm_bias"]

NORM_LAYERS: tuple[type[nn.Module], ...] = (_NormBase, nn.GroupNorm, nn.LayerNorm, nn.RMSNorm)
"""Module types whose parameters take `weight_decay_norm`."""


def head_module_names(model: nn.Module) -> tuple[str, ...]:
    """Names of the model's top-level children that are embedding heads (pooling → neck →
    classifier): `("head",)` for the baseline, the eight `b*_head` for MGN."""
    return tuple(name for name, child in model.named_children() if isinstance(child, EmbeddingHead))


def parameter_role(module: nn.Module, local_name: str) -> ParamRole:
    """The role of parameter `local_name` owned directly by `module` (see the module table)."""
    is_bias = local_name == "bias"
    if isinstance(module, NORM_LAYERS):
        return "norm_bias" if is_bias else "norm_weight"
    return "bias" if is_bias else "weight"


def _owned_parameters(model: nn.Module) -> Iterator[tuple[str, str, nn.Module, nn.Parameter]]:
    """(module name, local name, owner, parameter) once per distinct parameter, first owner in
    `named_modules` order winning for shared (tied) parameters."""
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for local_name, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            yield module_name, local_name, module, parameter


def _inside(module_name: str, roots: Collection[str]) -> bool:
    """Whether `module_name` is one of `roots` or nested inside one (exact name membership)."""
    return any(module_name == root or module_name.startswith(root + ".") for root in roots)


def parameter_groups(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    weight_decay_bias: float,
    bias_lr_factor: float,
    heads_lr_factor: float,
    head_modules: Collection[str],
) -> list[dict[str, Any]]:
    """Optimizer groups covering every parameter of `model` exactly once (frozen ones too).

    Each group is `{"name", "params", "lr", "weight_decay", "lr_factor"}` with `lr = base_lr ×
    lr_factor`; `name` is `"<part>/<role>"` with part `head` (inside one of `head_modules`,
    exact module names from `named_modules()`) or `body`. Groups without parameters are left out.
    """
    module_names = {name for name, _ in model.named_modules()}
    unknown = sorted(set(head_modules) - module_names)
    if unknown:
        raise ValueError(f"head modules {unknown} are not modules of {type(model).__name__}")
    decay: dict[ParamRole, float] = {
        "weight": weight_decay,
        "bias": weight_decay_bias,
        "norm_weight": weight_decay_norm,
        "norm_bias": weight_decay_norm,
    }
    groups: dict[str, dict[str, Any]] = {}
    for module_name, local_name, module, parameter in _owned_parameters(model):
        role = parameter_role(module, local_name)
        is_head = _inside(module_name, head_modules)
        lr_factor = (bias_lr_factor if role in ("bias", "norm_bias") else 1.0) * (
            heads_lr_factor if is_head else 1.0
        )
        name = f"{'head' if is_head else 'body'}/{role}"
        group = groups.setdefault(
            name,
            {
                "name": name,
                "params": [],
                "lr": base_lr * lr_factor,
                "weight_decay": decay[role],
                "lr_factor": lr_factor,
            },
        )
        group["params"].append(parameter)
    return list(groups.values())
