"""Helpers every dataset layout shares: finding its folder, listing, parsing and checking images.

All problems are raised as `DatasetError` with one sentence naming the culprit file or folder and
what was expected there. Image checks only read file headers (PIL's lazy `Image.open`), in a thread
pool, so scanning Market-1501 (32k images) takes a few seconds rather than a full decode.
"""

import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from reid_platform.data.records import ImageRecord
from reid_platform.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
"""File suffixes (lower-case) treated as images when a folder is listed."""

_CHECK_CHUNK = 256


def plural(count: int, noun: str) -> str:
    """`'1 image'`, `'3 images'`: counts in notes read as sentences."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def require_root(root: Path, *, expected: str, dataset: str) -> Path:
    """`root` itself, after checking that it is an existing folder."""
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder {root} does not exist (expected {expected} for {dataset})"
        )
    return root


def find_base(
    root: Path, *, candidates: Sequence[str], required: Sequence[str], dataset: str
) -> Path:
    """The folder holding a layout's `required` entries: `root/<candidate>` or `root` itself.

    The first existing candidate sub-folder wins (for example `Market-1501-v15.09.15`); without one
    the entries are looked for directly under `root`. A missing entry is an error naming it.
    """
    layout = "{" + ",".join(required) + "}"
    expected = " or ".join([f"{name}/{layout}" for name in candidates] + [layout])
    require_root(root, expected=f"{expected} inside it", dataset=dataset)
    base = next((root / name for name in candidates if (root / name).is_dir()), root)
    for entry in required:
        if not (base / entry).exists():
            raise DatasetError(
                f"dataset folder {base / entry} does not exist "
                f"(expected {expected} under {root} for {dataset})"
            )
    return base


def require_dir(folder: Path, *, expected: str, dataset: str) -> Path:
    """`folder`, after checking it exists; the error says what should have been there."""
    if not folder.is_dir():
        raise DatasetError(
            f"dataset folder {folder} does not exist (expected {expected} for {dataset})"
        )
    return folder


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (other files are ignored)."""
    with os.scandir(folder) as entries:
        names = [
            entry.name
            for entry in entries
            if _suffix(entry.name) in IMAGE_SUFFIXES and entry.is_file()
        ]
    return [folder / name for name in sorted(names)]


def _suffix(name: str) -> str:
    # Plain string work: building a Path per entry costs more than the scan itself on 30k files.
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def parse_name(path: Path, pattern: re.Pattern[str], example: str) -> tuple[int, ...]:
    """The integer groups of `pattern` searched in the file name of `path`.

    A name that does not match is a `DatasetError` naming the file, the pattern and an example.
    """
    match = pattern.search(path.name)
    groups = match.groups() if match is not None else ()
    if match is None or not all(group is not None and _is_int(group) for group in groups):
        raise DatasetError(
            f"image file {path} does not match the expected name pattern {pattern.pattern!r} "
            f"(e.g. {example})"
        )
    return tuple(int(group) for group in groups)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def read_list(path: Path, *, expected: str, dataset: str) -> list[tuple[int, str]]:
    """Non-blank, stripped lines of a text list file with their 1-based line numbers."""
    if not path.is_file():
        raise DatasetError(f"list file {path} does not exist (expected {expected} for {dataset})")
    with path.open(encoding="utf-8") as handle:
        lines = [(number, line.strip()) for number, line in enumerate(handle, start=1)]
    return [(number, text) for number, text in lines if text]


def require_records(records: Sequence[ImageRecord], source: Path, what: str) -> None:
    """Fail naming `source` (a folder or list file) when it yielded no `what` images."""
    if not records:
        kind = "list file" if source.is_file() else "dataset folder"
        raise DatasetError(f"{kind} {source} holds no {what} images")


def _header_problem(path: Path) -> str | None:
    """Why `path` is not a readable image (from its header only), or None when it is."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "is not a readable image (empty, corrupt or of an unknown format)"
    if width <= 0 or height <= 0:
        return "is not a readable image (it has no pixels)"
    return None


def _first_problem(paths: Sequence[Path]) -> tuple[Path, str] | None:
    for path in paths:
        problem = _header_problem(path)
        if problem is not None:
            return path, problem
    return None


def check_images(paths: Iterable[Path], *, listed_in: Path | None = None) -> None:
    """Fail on the first (in order) image that is missing, empty or not a readable image.

    Only headers are read. `listed_in` names the list file the paths came from, for the message.
    """
    ordered = list(paths)
    chunks = [ordered[i : i + _CHECK_CHUNK] for i in range(0, len(ordered), _CHECK_CHUNK)]
    if len(chunks) <= 1:
        results = [_first_problem(chunk) for chunk in chunks]
    else:
        workers = min(8, 4 * (os.cpu_count() or 1), len(chunks))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_first_problem, chunks))
    failure = next((result for result in results if result is not None), None)
    if failure is not None:
        path, problem = failure
        source = f" (listed in {listed_in})" if listed_in is not None else ""
        raise DatasetError(f"image file {path} {problem}{source}")


def check_records(records: Sequence[ImageRecord], *, listed_in: Path | None = None) -> None:
    """`check_images` on the paths of `records`."""
    check_images((record.path for record in records), listed_in=listed_in)
