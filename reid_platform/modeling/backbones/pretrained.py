"""ImageNet weights from a local file or cache folder; nothing is ever downloaded.

`find_weight_file` resolves `pretrained.path` (must exist) or searches `pretrained.cache_dir` for
the usual file names of a backbone (torchvision's `resnet50-0676ba61.pth`, IBN-Net's
`resnet50_ibn_a-d9d0bb7b.pth`, the official `resnest50-528c19ca.pth`, timm's Hugging Face cache
layout `models--timm--<arch>.<tag>/snapshots/<hash>/model.safetensors`, ...). When there is no
file, the backbone keeps its random initialisation and one INFO line says so.
"""

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from reid_platform.errors import ConfigError

logger = logging.getLogger(__name__)

NEW_LAYER_MARKERS = ("NL_", ".se.")
"""Key fragments of layers ImageNet weights never contain (non-local, SE): missing is normal."""

_TIMM_ARCH = {
    "resnest50": "resnest50d",
    "resnest101": "resnest101e",
}


def _generic_patterns(stem: str) -> tuple[str, ...]:
    return (f"{stem}-*.pth", f"{stem}.pth", f"{stem}.safetensors")


def _hub_patterns(arch: str) -> tuple[str, ...]:
    snapshots = f"models--timm--{arch}*/snapshots/*"
    return (f"{snapshots}/model.safetensors", f"{snapshots}/pytorch_model.bin")


def weight_file_patterns(name: str, *, ibn: bool = False, se: bool = False) -> tuple[str, ...]:
    """Glob patterns (best first, relative to a cache folder) of `name`'s ImageNet weights.

    With SE but no SE release for the variant, the plain weights follow (the SE gates then start
    from their initialisation).
    """
    if name.startswith("timm:"):
        arch = name.removeprefix("timm:")
        return (*_generic_patterns(arch), *_hub_patterns(arch))
    if ibn:
        # IBN-Net names: resnet50_ibn_a, se_resnet101_ibn_a, resnext101_ibn_a.
        family = name.split("_")[0]
        base = (f"se_{family}_ibn_a",) if se else ()
        stems = (*base, f"{family}_ibn_a")
        return tuple(pattern for stem in stems for pattern in _generic_patterns(stem))
    stems = (f"se_{name}", name) if se else (name,)
    arch = _TIMM_ARCH.get(name, name)
    generic = tuple(pattern for stem in stems for pattern in _generic_patterns(stem))
    extra = _generic_patterns(arch) if arch != name else ()
    return (*generic, *extra, *_hub_patterns(arch))


def find_weight_file(
    *, path: str | None, cache_dir: str | None, patterns: tuple[str, ...], backbone: str
) -> Path | None:
    """The weights file to load, or None (random init, announced in one INFO line).

    A `path` that does not exist is a `ConfigError`; a missing `cache_dir` is an empty cache.
    """
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"model.backbone.pretrained.path {str(file)!r} is not a file")
        return file
    if cache_dir is None:
        reason = "pretrained.path and pretrained.cache_dir are unset"
    else:
        folder = Path(cache_dir).expanduser()
        for pattern in patterns:
            found = sorted(folder.glob(pattern)) if folder.is_dir() else []
            if found:
                return found[0]
        reason = f"no {' / '.join(patterns[:2])} file in {str(folder)!r}"
    logger.info("No ImageNet weights for %s (%s): random initialisation.", backbone, reason)
    return None


def _unwrap(checkpoint: object, file: Path) -> dict[str, Tensor]:
    while isinstance(checkpoint, Mapping):
        nested = next((checkpoint[k] for k in ("state_dict", "model") if k in checkpoint), None)
        if nested is None:
            break
        checkpoint = nested
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise ConfigError(f"weights file {str(file)!r} holds no state dict")
    tensors = {str(k): v for k, v in checkpoint.items() if isinstance(v, Tensor)}
    if tensors and all(key.startswith("module.") for key in tensors):
        tensors = {key.removeprefix("module."): value for key, value in tensors.items()}
    return tensors


def read_state_dict(file: Path) -> dict[str, Tensor]:
    """The tensors of a `.pth`/`.pt`/`.bin` (loaded with `weights_only=True`) or `.safetensors`
    file, unwrapped from `{"state_dict": ...}` / `{"model": ...}` and without a DDP `module.`
    prefix."""
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            return _unwrap(load_file(str(file)), file)
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot read weights file {str(file)!r}: {reason}") from error
    return _unwrap(checkpoint, file)


def _preview(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_weights(
    module: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str,
    unused_prefixes: tuple[str, ...] = ("fc.",),
) -> int:
    """Copy the tensors of `state_dict` whose name and shape match into `module`; return how many.

    Keys under `unused_prefixes` (the ImageNet classifier) are dropped quietly; other unexpected or
    shape-mismatched keys and missing keys are logged (missing non-local / SE keys at INFO, as
    ImageNet weights never have them). No matching tensor at all is a `ConfigError`.
    """
    own = module.state_dict()
    matched = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise ConfigError(
            f"weights file {source} has no tensor matching this backbone "
            f"(its first keys: {_preview(list(state_dict), 3)})"
        )
    mismatched = [k for k in state_dict if k in own and k not in matched]
    unexpected = [k for k in state_dict if k not in own and not k.startswith(unused_prefixes)]
    missing = [k for k in own if k not in matched and not k.endswith("num_batches_tracked")]
    module.load_state_dict(matched, strict=False)
    logger.info("Loaded %d of %d backbone tensors from %s.", len(matched), len(own), source)
    if missing:
        new_layers_only = all(any(m in f".{k}" for m in NEW_LAYER_MARKERS) for k in missing)
        level = logging.INFO if new_layers_only else logging.WARNING
        logger.log(level, "Not in %s, kept at initialisation: %s", source, _preview(missing))
    if unexpected or mismatched:
        logger.warning("Unused tensors of %s: %s", source, _preview([*mismatched, *unexpected]))
    return len(matched)
