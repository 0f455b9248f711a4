"""The export stage's error: a `ReidError`, so the CLI shows its one sentence and exits non-zero."""

from reid_platform.errors import ReidError


class ExportError(ReidError):
    """An export, its verification or an engine build failed, or its tools are unavailable."""
