"""The stage interface of ResNet-family backbones, for architectures that split them (MGN)."""

from typing import Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class StagedBackbone(Protocol):
    """A backbone made of a stem and four residual stages.

    `stem()` and `stage(s)` (s = 1..4) return `nn.Sequential`s that share the backbone's modules
    in execution order (deep-copy them for separate branches); `stage_channels[s - 1]` is the
    output width of stage s and `out_channels == stage_channels[-1]`.
    """

    out_channels: int
    stage_channels: tuple[int, ...]

    def stem(self) -> nn.Sequential: ...

    def stage(self, index: int) -> nn.Sequential: ...
