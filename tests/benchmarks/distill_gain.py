"""Does distillation help the quickstart student? Paired runs with and without a teacher.

Run on demand (not part of the test suite; one process, no Ray, no MLflow):

    .venv/bin/python tests/benchmarks/distill_gain.py --json out.json
    .venv/bin/python tests/benchmarks/distill_gain.py --teacher PATH/model.pt   # reuse a teacher
    .venv/bin/python tests/benchmarks/distill_gain.py --quick   # end-to-end check, ~1 minute

On the synthetic benchmark at the quickstart size (120 ids, 4 cameras, 12 images per id,
128×64 input; `--data-seed`), `reid_platform.training.loop.train` is called directly for:

1. one teacher: experiments/quickstart.yaml with `model.backbone.name=resnet34`
   (`--teacher-backbone`, `--teacher-epochs`); its validation / test mAP and parameter count.
   `--teacher PATH` reuses a model file instead (its `metrics.json` neighbour, if any, gives
   the mAPs); the teacher's model.pt path is always printed;
2. per training seed (`--seeds`): the student of experiments/distill_quickstart.yaml
   (timm:resnet10t) alone (`distillation.enabled=false`) and distilled
   (`distillation.enabled=true distillation.teacher_weights=<teacher>`), configs otherwise
   identical (same data, input, schedule and `seed`, which seeds init, sampler and
   augmentation), evaluated once at the end (`training.eval_period` = the epoch count).

It reports per seed the validation (`eval/mAP`, identities carved from training) and test
(`test/mAP`) mAP of both students and the paired difference Δ = distilled − alone; the mean,
standard deviation and standard error (SE = sd / √n) of Δ; the overhead (training seconds per
epoch without the evaluation, and the loop's `train/images_per_sec`, distilled / alone); and
the first epoch's loss terms. No gain is assumed. Verdict, separately for validation and test:
"a gain" only if mean Δ > 2·SE and Δ > 0 on every seed; "a loss" if mean Δ < −2·SE and Δ < 0 on
every seed; otherwise "no gain shown" (always with one seed: there is no spread to judge by).
"""

import argparse
import json
import math
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from reid_platform import metric_names
from reid_platform.config import load_config
from reid_platform.modeling.model_file import load_model_file
from reid_platform.training.checkpoint_dir import STATE_FILE, read_metrics
from reid_platform.training.loop import (
    EpochEnd,
    IterationLog,
    TrainingHooks,
    WorkerPlacement,
    train,
)

REPO = Path(__file__).resolve().parents[2]
TEACHER_RECIPE = REPO / "experiments/quickstart.yaml"
STUDENT_RECIPE = REPO / "experiments/distill_quickstart.yaml"
TERMS = ("cross_entropy", "triplet", "distill_logit", "distill_pkt")
VAL_MAP, TEST_MAP = metric_names.MAP, metric_names.test_metric(metric_names.MAP)


class EpochTimer(TrainingHooks):
    """Training seconds per epoch: from the previous epoch's end (the `train` call for the
    first, so it includes building model, data and teacher) to the epoch's last iteration, so
    the evaluation and checkpoint after it are excluded. Needs `training.log_period=1`."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.boundary = self.last_iteration = time.perf_counter()
        self.seconds: list[float] = []
        self.metrics: list[dict[str, float]] = []

    def on_iteration(self, log: IterationLog) -> None:
        self.last_iteration = time.perf_counter()

    def on_epoch_end(self, end: EpochEnd) -> None:
        self.seconds.append(self.last_iteration - self.boundary)
        self.boundary = time.perf_counter()
        self.metrics.append(dict(end.metrics))
        loss, seconds = end.metrics[metric_names.TRAIN_LOSS], self.seconds[-1]
        print(f"  {self.label} epoch {end.epoch + 1}: loss {loss:.3f}, {seconds:.1f} s", flush=True)


@dataclass
class Run:
    """One finished training: mAPs (fractions), timing and the first epoch's loss terms."""

    val_map: float
    test_map: float
    params: int
    epoch_seconds: list[float]  # EpochTimer's
    sec_per_epoch: float  # mean over the epochs after the first (the first if it is alone)
    images_per_sec: float  # mean of the epochs' train/images_per_sec
    first_losses: dict[str, float]
    wall_s: float


@dataclass
class Teacher:
    """The teacher's model file, parameter count and mAPs (NaN when unknown)."""

    model_file: str
    params: int
    val_map: float
    test_map: float


@dataclass
class Paired:
    """Δ = distilled − alone per seed, their mean, sample sd, SE = sd/√n and the verdict."""

    deltas: list[float]
    mean: float
    sd: float
    se: float
    verdict: str


def train_run(
    config_path: Path, overrides: list[str], work: Path, label: str
) -> tuple[Run, Path | None]:
    """Train in `work`; → the run's figures and its final checkpoint folder."""
    config = load_config(config_path, overrides)
    timer = EpochTimer(label)
    outcome = train(config, placement=WorkerPlacement(), hooks=timer, work_dir=work)
    first, last = timer.metrics[0], timer.metrics[-1]
    figures = Run(
        val_map=outcome.validation_metrics.get(VAL_MAP, math.nan),
        test_map=outcome.test_metrics.get(TEST_MAP, math.nan),
        params=int(last[metric_names.MODEL_PARAMS]),
        epoch_seconds=timer.seconds,
        sec_per_epoch=statistics.fmean(timer.seconds[1:] or timer.seconds),
        images_per_sec=statistics.fmean(
            epoch[metric_names.TRAIN_IMAGES_PER_SEC] for epoch in timer.metrics
        ),
        first_losses={
            term: first[name]
            for term in TERMS
            if (name := metric_names.train_loss_metric(term)) in first
        },
        wall_s=outcome.wall_time_s,
    )
    return figures, outcome.final_checkpoint_dir


def common_overrides(args: argparse.Namespace, data_root: Path) -> list[str]:
    """data.* and input.* shared by teacher and students, plus the benchmark's run settings."""
    data = [
        f"data.{split}.0.{key}={value}"
        for split in ("train", "test")
        for key, value in (
            ("root", data_root),
            ("synthetic.ids", args.ids),
            ("synthetic.images_per_id", args.images_per_id),
            ("synthetic.seed", args.data_seed),
        )
    ]
    if args.val_ids is not None:
        data.append(f"data.validation.num_ids={args.val_ids}")
    size = f"[{args.size[0]},{args.size[1]}]"
    return [
        *data,
        f"input.size_train={size}",
        f"input.size_test={size}",
        f"data.loader.num_workers={args.num_workers}",
        "export.formats=[]",
        "training.log_period=1",  # EpochTimer sees the end of each iteration
    ]


def schedule(epochs: int) -> list[str]:
    """Evaluate and checkpoint at the last epoch only."""
    keys = ("solver.max_epochs", "training.eval_period", "training.checkpoint_period")
    return [f"{key}={epochs}" for key in keys]


def get_teacher(args: argparse.Namespace, common: list[str], run_dir: Path) -> Teacher:
    """Train the teacher, or take `--teacher` (mAPs from the `metrics.json` beside it)."""
    if args.teacher is not None:
        path = args.teacher.resolve()
        saved = read_metrics(path.parent)
        val_map, test_map = saved.get(VAL_MAP, math.nan), saved.get(TEST_MAP, math.nan)
        print(f"teacher: reusing {path}", flush=True)
    else:
        name, epochs = args.teacher_backbone, args.teacher_epochs
        print(f"teacher {name}: training {epochs} epochs", flush=True)
        overrides = [*common, *schedule(epochs), f"model.backbone.name={name}"]
        run, final = train_run(TEACHER_RECIPE, overrides, run_dir / "teacher", "teacher")
        if final is None:
            raise RuntimeError("the teacher's training wrote no final checkpoint")
        path, val_map, test_map = final / "model.pt", run.val_map, run.test_map
        (final / STATE_FILE).unlink()  # the optimizer state (3× model.pt) is not needed
    params = sum(p.numel() for p in load_model_file(path).model.parameters())
    print(f"teacher model file: {path}", flush=True)
    return Teacher(model_file=str(path), params=params, val_map=val_map, test_map=test_map)


def paired(alone: list[float], distilled: list[float]) -> Paired:
    deltas = [d - a for a, d in zip(alone, distilled, strict=True)]
    mean = statistics.fmean(deltas)
    sd = statistics.stdev(deltas) if len(deltas) > 1 else math.nan
    se = sd / math.sqrt(len(deltas))
    if len(deltas) < 2:
        verdict = "no gain shown (one seed: no spread to judge by)"
    elif mean > 2 * se and all(d > 0 for d in deltas):
        verdict = "a gain (mean Δ > 2·SE and Δ > 0 on every seed)"
    elif mean < -2 * se and all(d < 0 for d in deltas):
        verdict = "a loss (mean Δ < −2·SE and Δ < 0 on every seed)"
    else:
        verdict = "no gain shown (mean Δ ≤ 2·SE, or Δ ≤ 0 on some seed)"
    return Paired(deltas=deltas, mean=mean, sd=sd, se=se, verdict=verdict)


def overhead(alone: list[Run], distilled: list[Run]) -> dict[str, float]:
    """Means over seeds of seconds per epoch and images/s; ratios distilled / alone."""
    cost: dict[str, float] = {}
    for field in ("sec_per_epoch", "images_per_sec"):
        cost[f"{field}_alone"] = statistics.fmean(getattr(r, field) for r in alone)
        cost[f"{field}_distilled"] = statistics.fmean(getattr(r, field) for r in distilled)
        cost[f"{field}_ratio"] = cost[f"{field}_distilled"] / cost[f"{field}_alone"]
    return cost


def print_table(
    teacher: Teacher,
    runs: dict[int, dict[str, Run]],
    val: Paired,
    test: Paired,
    cost: dict[str, float],
) -> None:
    """mAPs in percent, Δ in percentage points; s/epoch as `Run.sec_per_epoch`."""
    print(f"\n{'':22}{'val mAP':>8}{'test mAP':>9}{'s/epoch':>9}{'img/s':>8}{'params':>9}")
    t = teacher
    print(
        f"{'teacher':22}{100 * t.val_map:8.1f}{100 * t.test_map:9.1f}{'':17}{t.params / 1e6:8.1f}M"
    )
    for seed, pair in runs.items():
        for name, r in pair.items():
            print(
                f"{f'seed {seed} {name}':22}{100 * r.val_map:8.1f}{100 * r.test_map:9.1f}"
                f"{r.sec_per_epoch:9.1f}{r.images_per_sec:8.1f}{r.params / 1e6:8.1f}M"
            )
        a, d = pair["alone"], pair["distilled"]
        print(
            f"{f'seed {seed} Δ':22}{100 * (d.val_map - a.val_map):+8.1f}"
            f"{100 * (d.test_map - a.test_map):+9.1f}"
        )
    for split, p in (("val", val), ("test", test)):
        print(
            f"{split:>4}: mean Δ {100 * p.mean:+.2f} points, sd {100 * p.sd:.2f}, "
            f"SE {100 * p.se:.2f}, n {len(p.deltas)}: {p.verdict}"
        )
    print(
        f"overhead, distilled / alone: s/epoch {cost['sec_per_epoch_ratio']:.2f}×, "
        f"images/s {cost['images_per_sec_ratio']:.2f}×"
    )
    for name in ("alone", "distilled"):
        losses = runs[min(runs)][name].first_losses
        terms = ", ".join(f"{term} {value:.3f}" for term, value in losses.items())
        print(f"first-epoch losses (seed {min(runs)}), {name}: {terms}")
    if len(next(iter(runs.values()))["alone"].epoch_seconds) == 1:
        print("s/epoch: one epoch only, so it includes building model, data and teacher")
    print(f"reuse this teacher: --teacher {teacher.model_file}")


def finite(value: object) -> object:
    """`value` with NaN (one seed's sd, a reused teacher's missing mAP) as None, for JSON."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher", type=Path, default=None, help="a teacher model.pt to reuse")
    parser.add_argument("--teacher-backbone", default="resnet34")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--student-epochs", type=int, default=6)
    parser.add_argument("--ids", type=int, default=120)
    parser.add_argument("--images-per-id", type=int, default=12)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=[128, 64], metavar=("H", "W"))
    parser.add_argument("--val-ids", type=int, default=None, help="default: the recipe's 12")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-workers", type=int, default=1, help="data.loader.num_workers")
    parser.add_argument("--work-dir", type=Path, default=REPO / "outputs/distill_gain")
    parser.add_argument("--quick", action="store_true", help="24 ids, 64×32, 1 epoch, 1 seed")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument(
        "--distill",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides of the distilled student only (e.g. distillation.pkt.weight=100)",
    )
    args = parser.parse_args()
    if args.quick:
        args.ids, args.size, args.val_ids, args.seeds = 24, [64, 32], 4, args.seeds[:1]
        args.teacher_epochs = args.student_epochs = 1
    torch.set_num_threads(args.threads)
    data_root = args.work_dir / f"synthetic_{args.ids}x{args.images_per_id}_seed{args.data_seed}"
    run_dir = args.work_dir / time.strftime("%Y%m%d-%H%M%S")
    common = common_overrides(args, data_root.resolve())
    print(f"data {data_root}, runs {run_dir}, {args.threads} threads", flush=True)
    teacher = get_teacher(args, common, run_dir)
    runs: dict[int, dict[str, Run]] = {}
    modes = {
        "alone": ["distillation.enabled=false"],
        "distilled": [
            "distillation.enabled=true",
            f"distillation.teacher_weights={teacher.model_file}",
            *args.distill,
        ],
    }
    for seed in args.seeds:
        runs[seed] = {}
        for name, flags in modes.items():
            work = run_dir / f"student_seed{seed}_{name}"
            print(f"student seed {seed} {name}: {args.student_epochs} epochs", flush=True)
            overrides = [*common, *schedule(args.student_epochs), f"seed={seed}", *flags]
            runs[seed][name], _ = train_run(STUDENT_RECIPE, overrides, work, f"seed {seed} {name}")
            shutil.rmtree(work)  # student checkpoints are not needed afterwards
    alone, distilled = [p["alone"] for p in runs.values()], [p["distilled"] for p in runs.values()]
    val = paired([r.val_map for r in alone], [r.val_map for r in distilled])
    test = paired([r.test_map for r in alone], [r.test_map for r in distilled])
    cost = overhead(alone, distilled)
    print_table(teacher, runs, val, test, cost)
    if args.json is not None:
        result = {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "teacher": asdict(teacher),
            "runs": {str(s): {n: asdict(r) for n, r in p.items()} for s, p in runs.items()},
            "val": asdict(val),
            "test": asdict(test),
            "overhead": cost,
        }
        args.json.write_text(json.dumps(finite(result), indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
