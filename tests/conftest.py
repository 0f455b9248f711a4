"""Fixtures that write tiny benchmark trees: real 4×8 images (PNG or JPEG by suffix) and lists."""

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from PIL import Image

WriteImages = Callable[[Path, Iterable[str]], list[Path]]
WriteText = Callable[[Path, Iterable[str]], Path]


def _write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image_format = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    # A colour per file name keeps images distinct without random state.
    shade = sum(path.name.encode()) % 256
    Image.new("RGB", (4, 8), (shade, 255 - shade, 80)).save(path, format=image_format)
    return path


@pytest.fixture
def write_images() -> WriteImages:
    """`write_images(folder, ["a.jpg", "sub/b.png"])` writes real images, returns their paths."""

    def write(folder: Path, names: Iterable[str]) -> list[Path]:
        return [_write_image(folder / name) for name in names]

    return write


@pytest.fixture
def write_text() -> WriteText:
    """`write_text(path, lines)` writes the lines (newline-terminated), making parent folders."""

    def write(path: Path, lines: Iterable[str]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return path

    return write
