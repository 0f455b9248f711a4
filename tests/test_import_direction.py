"""The core never imports ray or mlflow: it must import with both blocked."""

import subprocess
import sys
from pathlib import Path

import reid_platform

CORE = ("config", "data", "modeling", "losses", "training", "evaluation", "export")

BLOCKER = """
import importlib, importlib.abc, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ray", "mlflow"}:
            raise ImportError(f"core module imported {name}")
        return None

sys.meta_path.insert(0, Block())
import reid_platform
for stage in %r:
    try:
        package = importlib.import_module(f"reid_platform.{stage}")
    except ModuleNotFoundError as error:
        if error.name == f"reid_platform.{stage}":
            continue  # stage not built yet
        raise
    for info in pkgutil.walk_packages(package.__path__, prefix=f"reid_platform.{stage}."):
        importlib.import_module(info.name)
print("ok")
"""


def test_core_imports_without_ray_and_mlflow() -> None:
    package_root = Path(reid_platform.__file__).parent
    assert (package_root / "config").is_dir() and (package_root / "data").is_dir()
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER % (CORE,)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocker_really_blocks() -> None:
    probe = BLOCKER.split("import reid_platform")[0] + "import mlflow\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "core module imported mlflow" in result.stderr
