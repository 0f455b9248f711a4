"""A small typed name → object registry for the true plug-in points (datasets, backbones, ...)."""

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from reid_platform.errors import ConfigError

T = TypeVar("T")


def close_matches(word: str, candidates: list[str] | tuple[str, ...], limit: int = 3) -> list[str]:
    """Candidates that look like a mistyped `word`, best first (case-insensitive)."""
    lowered = {candidate.lower(): candidate for candidate in candidates}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=limit, cutoff=0.5)
    return [lowered[match] for match in found]


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x' or 'y'?)' for close candidates, else the list of valid names."""
    matches = close_matches(word, candidates)
    if matches:
        return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
    return " (valid: " + ", ".join(repr(c) for c in sorted(candidates)) + ")"


class Registry(Generic[T]):
    """Maps names to objects of one kind; unknown names fail listing the closest valid ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that records the decorated object under `name` (names are unique)."""

        def record(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return record

    def get(self, name: str) -> T:
        """The entry called `name`; a `ConfigError` naming close matches when there is none."""
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
