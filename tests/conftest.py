"""Fixtures shared across the suite: tiny benchmark trees (real 4×8 images, PNG or JPEG by
suffix, and list files), and for the real-Ray tests (distributed, workflows) the quickstart
shrunk to seconds, one local Ray per module and the tiny synthetic benchmark generated once
per module."""

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from reid_platform.config import load_config
from reid_platform.data.build import build_data

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


REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "experiments/quickstart.yaml"

TinyOverrides = Callable[..., list[str]]


def _tiny_overrides(data_root: Path, out: Path, *, epochs: int, export: bool = False) -> list[str]:
    """Quickstart shrunk: 24 synthetic ids at 64×32, 3 iterations per epoch, eval every epoch;
    the final ONNX export only with `export` (it adds seconds to each finished run)."""
    synthetic = {"ids": 24, "images_per_id": 6, "height": 64, "width": 32}
    return [
        *(f"data.{split}.0.root={data_root}" for split in ("train", "test")),
        *(f"data.{s}.0.synthetic.{k}={v}" for s in ("train", "test") for k, v in synthetic.items()),
        "data.validation.num_ids=4",
        "data.loader.batch_size=16",
        "data.loader.num_workers=0",
        "input.size_train=[64,32]",
        "input.size_test=[64,32]",
        "evaluation.rank_list_queries=2",
        f"solver.max_epochs={epochs}",
        "solver.warmup.iters=2",
        "training.eval_period=1",
        "training.checkpoint_period=1",
        "training.log_period=1",
        "distributed.num_workers=2",
        f"distributed.storage_path={out / 'ray'}",
        *([] if export else ["export.formats=[]"]),
    ]


@pytest.fixture(scope="session")
def tiny_overrides() -> TinyOverrides:
    """`tiny_overrides(data_root, out, epochs=N, export=False)` → the tiny run's overrides."""
    return _tiny_overrides


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local Ray for the module; yields its address (for `--address`)."""
    import ray  # only the real-Ray modules pay for it

    ray.init(address="local", num_cpus=4, log_to_driver=True)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic benchmark, generated once for the module."""
    root = tmp_path_factory.mktemp("data") / "synth"
    build_data(load_config(QUICKSTART, _tiny_overrides(root, root, epochs=1)).data)
    return root
