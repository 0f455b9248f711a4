"""The software and hardware a run executes on, as MLflow tags (`reid.env.*`).

Gathered in the driver process. Ray's version is read from package metadata: importing ray here
would start its machinery in a module that must stay MLflow-only.
"""

import os
import platform
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "ray", "mlflow", "numpy")
_GIT_TIMEOUT_S = 5.0
_NVIDIA_SMI_TIMEOUT_S = 10.0


def package_version(name: str) -> str:
    """Installed version of distribution `name`, or "absent"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _git(args: list[str], cwd: Path) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(cwd: Path) -> dict[str, str]:
    """Commit of the git work tree at `cwd` and whether tracked files differ; {} outside git."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return {}
    changes = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    state = {"reid.env.git_commit": commit, "mlflow.source.git.commit": commit}
    if changes is not None:
        state["reid.env.git_dirty"] = "true" if changes else "false"
    return state


def gpu_names() -> list[str]:
    """Names of the visible CUDA GPUs, [] without any.

    nvidia-smi answers without creating a CUDA context in this (driver) process, which would hold
    GPU memory the training workers need; torch is the fallback where nvidia-smi is missing.
    """
    if not torch.cuda.is_available():
        return []
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            result = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=_NVIDIA_SMI_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            result = None
        if result is not None and result.returncode == 0:
            return [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def environment_tags(cwd: Path | None = None) -> dict[str, str]:
    """Tags naming package versions, git commit of `cwd` (default: working dir) and hardware."""
    tags = {"reid.env.python": platform.python_version()}
    tags |= {f"reid.env.{name}": package_version(name) for name in PACKAGES}
    tags |= git_state(Path.cwd() if cwd is None else cwd)
    gpus = gpu_names()
    tags |= {
        "reid.env.hostname": socket.gethostname(),
        "reid.env.platform": platform.platform(),
        "reid.env.cpu_count": str(os.cpu_count() or 0),
        "reid.env.gpu_count": str(len(gpus)),
        "reid.env.gpus": ", ".join(gpus) if gpus else "none",
    }
    return tags
