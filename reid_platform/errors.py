"""The error types that the CLI turns into one clear sentence and a non-zero exit.

Every error a user can cause (a config key, a file, a run id) is a `ReidError`; its message is
a single sentence that names the culprit. Anything else reaching the CLI is a bug in this package.
"""


class ReidError(Exception):
    """A problem with the user's input, stated in one sentence naming the culprit."""


class ConfigError(ReidError):
    """A config file, key, value or override is invalid."""


class DatasetError(ReidError):
    """A dataset folder, list file, image or file name does not match its expected layout."""


class EvaluationError(ReidError):
    """Evaluation inputs cannot give a metric (no query has a match, mismatched array sizes)."""
