"""The `reid` command: a thin layer that parses arguments, calls the library and renders results."""

from reid_platform.cli.main import main

__all__ = ["main"]
