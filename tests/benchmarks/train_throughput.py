"""Training throughput of the quickstart model on CPU with 1 and 2 Ray Train workers.

Run on demand (not part of the test suite; each run starts Ray and trains a few epochs):

    python tests/benchmarks/train_throughput.py [--epochs 3] [--workers 1 2]

Each worker count runs `reid train experiments/quickstart.yaml` in a fresh folder with a
temporary sqlite MLflow store; the job's images/s is the per-rank `train/images_per_sec`
(rank 0's, logged per epoch) times the number of workers, averaged over epochs after the first
(the first includes data-loader and gloo start-up). The ratio against 1 worker is printed.
On a GPU machine, pass `--gpu` to compare fp32 with AMP + channels_last on BoT-R50 256×128.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[2]
REID = Path(sys.executable).with_name("reid")


def run_training(overrides: list[str], folder: Path, config: str) -> tuple[float, float]:
    """Train in `folder`; returns (images/s of the job, wall seconds)."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    command = [str(REID), "train", str(REPO / config), *overrides, "--tracking-uri", uri]
    started = time.perf_counter()
    subprocess.run(
        command, cwd=folder, check=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    )
    wall = time.perf_counter() - started
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    history = sorted(
        client.get_metric_history(run.info.run_id, "train/images_per_sec"), key=lambda m: m.step
    )
    steady = [m.value for m in history[1:]] or [m.value for m in history]
    return sum(steady) / len(steady), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--gpu", action="store_true", help="BoT-R50 fp32 vs AMP+channels_last")
    args = parser.parse_args()
    common = [f"solver.max_epochs={args.epochs}", f"training.eval_period={args.epochs}"]
    if args.gpu:
        on_gpu = ["distributed.num_workers=1", "distributed.use_gpu=true", "training.device=cuda"]
        cases = {
            "fp32": on_gpu,
            "amp+channels_last": [
                *on_gpu,
                "solver.precision.amp=true",
                "training.channels_last=true",
            ],
        }
        config = "experiments/quickstart.yaml"
        common += ["model.backbone.name=resnet50", "input.size_train=[256,128]"]
    else:
        cases = {f"{w} worker(s)": [f"distributed.num_workers={w}"] for w in args.workers}
        config = "experiments/quickstart.yaml"
    results: dict[str, float] = {}
    for name, overrides in cases.items():
        with tempfile.TemporaryDirectory() as scratch:
            per_rank, wall = run_training([*common, *overrides], Path(scratch), config)
        workers = int(next(o for o in overrides if "num_workers" in o).split("=")[1])
        results[name] = per_rank * workers
        print(f"{name}: {results[name]:.1f} images/s (job), wall {wall:.0f} s", flush=True)
    baseline = next(iter(results.values()))
    for name, rate in results.items():
        print(f"{name}: {rate / baseline:.2f}x the first case")


if __name__ == "__main__":
    main()
