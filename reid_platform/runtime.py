"""Where computation runs: the config's `auto | cpu | cuda` resolved against this machine."""

import logging
from typing import Literal

import torch

from reid_platform.errors import ReidError

logger = logging.getLogger(__name__)

RequestedDevice = Literal["auto", "cpu", "cuda"]


def resolve_device(requested: RequestedDevice) -> str:
    """`cuda` or `cpu`; `auto` takes a visible GPU, `cuda` without one raises `ReidError`."""
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise ReidError("training.device is cuda but torch sees no GPU (use cpu or auto)")
    device = "cuda" if requested == "cuda" or (requested == "auto" and available) else "cpu"
    if requested == "auto":
        logger.info("device auto: using %s", device)
    return device
