"""Errors raised while training: each one sentence naming the culprit, as the CLI expects."""

from reid_platform.errors import ReidError


class TrainingError(ReidError):
    """Training cannot go on (a diverged loss, an unusable checkpoint)."""


class NonFiniteLossError(TrainingError):
    """A loss term became NaN or infinite; the message names the iteration and the term."""
