"""Environment tags: versions from package metadata, the git commit, the hardware."""

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from reid_platform.tracking.environment import environment_tags


def test_versions_and_hardware(tmp_path: Path) -> None:
    ray_was_imported = "ray" in sys.modules
    tags = environment_tags(tmp_path)
    assert ray_was_imported or "ray" not in sys.modules  # the version comes from metadata
    for package in ("torch", "torchvision", "ray", "mlflow", "numpy"):
        assert tags[f"reid.env.{package}"] == metadata.version(package)
    assert tags["reid.env.cpu_count"] == str(os.cpu_count())
    assert tags["reid.env.gpu_count"] == str(torch.cuda.device_count())
    assert "reid.env.git_commit" not in tags  # tmp_path is no git work tree


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_of_the_work_tree(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
        return result.stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a", encoding="utf-8")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    tags = environment_tags(tmp_path)
    assert tags["reid.env.git_commit"] == git("rev-parse", "HEAD")
    assert tags["mlflow.source.git.commit"] == tags["reid.env.git_commit"]
    assert tags["reid.env.git_dirty"] == "false"
    (tmp_path / "a.txt").write_text("changed", encoding="utf-8")
    assert environment_tags(tmp_path)["reid.env.git_dirty"] == "true"
