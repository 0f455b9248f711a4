"""Re-ranking and query expansion speed: ours against the classic dense algorithms.

    python tests/benchmarks/eval_rerank_speed.py                  # Market-1501 scale
    python tests/benchmarks/eval_rerank_speed.py --baseline-subset 1000   # classic on a subset
    python tests/benchmarks/eval_rerank_speed.py --msmt           # MSMT17 scale, ours only
    python tests/benchmarks/eval_rerank_speed.py --isotropic      # full-rank random features
    python tests/benchmarks/eval_rerank_speed.py --device cuda --skip-baseline   # ours on a GPU

Each method runs in its own spawned process, so the peak RSS printed (ru_maxrss) is that
method's alone (it includes the process's copy of the features). The classic re-ranking is the
published numpy algorithm (several dense N × N matrices: ~10 GB and about a minute at Market
scale); with `--baseline-subset Q` it and ours are both run on the first Q queries and
proportionally many gallery items, and the full-size run is ours only. With `--device cuda`
ours runs on the GPU (CUDA is started before the clock, as a model would have started it) and
its peak GPU memory is printed too; the classic and dense baselines stay numpy/CPU ones.
"""

import argparse
import multiprocessing as mp
import os
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from eval_cases import EvalCase, market_like, msmt_like

from reid_platform.evaluation.distances import pairwise_distances
from reid_platform.evaluation.query_expansion import average_query_expansion
from reid_platform.evaluation.ranking import evaluate_ranking
from reid_platform.evaluation.rerank import k_reciprocal_rerank


def classic_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """The published numpy re_ranking (torchreid / FastReID), kept as written."""
    original_dist = np.concatenate(
        [np.concatenate([q_q, q_g], axis=1), np.concatenate([q_g.T, g_g], axis=1)], axis=0
    )
    del q_q, g_g
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    v = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist).astype(np.int32)
    query_num, all_num = q_g.shape[0], q_g.shape[0] + q_g.shape[1]
    half = int(np.around(k1 / 2.0)) + 1
    for i in range(all_num):
        forward = initial_rank[i, : k1 + 1]
        k_reciprocal = forward[np.where(initial_rank[forward, : k1 + 1] == i)[0]]
        expansion = k_reciprocal
        for candidate in k_reciprocal:
            c_forward = initial_rank[candidate, :half]
            c_reciprocal = c_forward[np.where(initial_rank[c_forward, :half] == candidate)[0]]
            if len(np.intersect1d(c_reciprocal, k_reciprocal)) > 2.0 / 3 * len(c_reciprocal):
                expansion = np.append(expansion, c_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original_dist[i, expansion])
        v[i, expansion] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float32)
        for i in range(all_num):
            v_qe[i, :] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
        del v_qe
    del initial_rank
    inverted = [np.where(v[:, i] != 0)[0] for i in range(all_num)]
    jaccard = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, all_num], dtype=np.float32)
        for column in np.where(v[i, :] != 0)[0]:
            images = inverted[column]
            temp_min[0, images] += np.minimum(v[i, column], v[images, column])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + original_dist * lambda_value
    return final[:query_num, query_num:]


def classic_from_features(q: np.ndarray, g: np.ndarray, metric: str) -> np.ndarray:
    dist = pairwise_distances
    return classic_re_ranking(dist(q, g, metric), dist(q, q, metric), dist(g, g, metric))  # type: ignore[arg-type]


def dense_aqe(q: np.ndarray, g: np.ndarray, k: int = 10, alpha: float = 3.0) -> tuple:
    """FastReID's aqe (one round): full N × N similarity, argpartition per row."""
    feats = torch.from_numpy(np.concatenate([q, g]))
    normed = torch.nn.functional.normalize(feats, dim=1)
    sims = torch.mm(normed, normed.t()).numpy()
    feats_np = feats.numpy()
    rows = []
    for sim in sims:
        top = np.argpartition(-sim, range(1, k + 1))[:k]
        rows.append(np.mean(feats_np[top] * np.power(sim[top], alpha)[:, None], axis=0))
    out = np.stack(rows)
    return out[: len(q)], out[len(q) :]


def _child(name: str, case_args: tuple, metric: str, device: str, pipe: Any) -> None:
    case = _build_case(*case_args)
    q, g = case.q_feats, case.g_feats
    fn: Callable[[], Any] = {
        "ours": lambda: k_reciprocal_rerank(q, g, metric=metric, device=device),  # type: ignore[arg-type]
        "classic": lambda: classic_from_features(q, g, metric),
        "aqe_ours": lambda: average_query_expansion(q, g, device=device),
        "aqe_dense": lambda: dense_aqe(q, g),
    }[name]
    on_gpu = device.startswith("cuda") and name in ("ours", "aqe_ours")
    if on_gpu:
        torch.zeros(1, device=device)  # CUDA's start-up is the model's cost, not ours
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load = os.getloadavg()[0]  # other work on the machine slows every timing
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = {
        "seconds": seconds,
        "cpu": cpu_seconds,
        "peak_mb": peak / 1024,
        "base_mb": before / 1024,
        "load": load,
    }
    if on_gpu:
        summary["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if name in ("ours", "classic"):
        ranking = evaluate_ranking(result, case.q_pids, case.g_pids, case.q_camids, case.g_camids)
        summary["mAP"] = ranking.mAP
        summary["rank1"] = ranking.rank(1)
    else:
        summary["checksum"] = float(np.abs(result[0]).sum() + np.abs(result[1]).sum())
    pipe.send(summary)


def _build_case(kind: str, subset: int | None) -> EvalCase:
    if kind == "isotropic":
        rng = np.random.default_rng(0)
        base = market_like()
        q = rng.standard_normal(base.q_feats.shape, dtype=np.float32)
        g = rng.standard_normal(base.g_feats.shape, dtype=np.float32)
        case = EvalCase(q, g, base.q_pids, base.g_pids, base.q_camids, base.g_camids)
    else:
        case = msmt_like() if kind == "msmt" else market_like()
    if subset is None:
        return case
    num_gallery = round(len(case.g_pids) * subset / len(case.q_pids))
    return EvalCase(
        case.q_feats[:subset], case.g_feats[:num_gallery], case.q_pids[:subset],
        case.g_pids[:num_gallery], case.q_camids[:subset], case.g_camids[:num_gallery],
    )  # fmt: skip


def run(name: str, case_args: tuple, metric: str, device: str = "cpu") -> dict:
    context = mp.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(name, case_args, metric, device, sender))
    process.start()
    summary = receiver.recv()
    process.join()
    return summary


def _line(label: str, summary: dict) -> str:
    extra = "".join(f"  {key} {summary[key]:.4f}" for key in ("mAP", "rank1") if key in summary)
    if "gpu_peak_mb" in summary:
        extra += f"  peak GPU memory {summary['gpu_peak_mb']:.0f} MB"
    return (
        f"  {label:<26} {summary['seconds']:8.2f} s wall  {summary['cpu']:8.2f} s cpu  "
        f"peak RSS {summary['peak_mb']:7.0f} MB (before the call {summary['base_mb']:.0f} MB)"
        f"  load {summary['load']:.2f}" + extra
    )


def matmul_gflops() -> float:
    """fp32 matmul throughput right now: the timings scale with it on a shared machine."""
    a = torch.randn(2048, 2048)
    a @ a
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    return 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--msmt", action="store_true", help="MSMT17 scale (ours only)")
    parser.add_argument("--isotropic", action="store_true", help="full-rank random features")
    parser.add_argument("--baseline-subset", type=int, default=None, metavar="Q")
    parser.add_argument("--metric", default="cosine")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-aqe", action="store_true")
    parser.add_argument("--device", default="cpu", help="where ours runs: cpu or cuda")
    args = parser.parse_args()
    kind = "msmt" if args.msmt else "isotropic" if args.isotropic else "market"
    print(
        f"{kind} case, metric {args.metric}, ours on {args.device}, "
        f"torch threads {torch.get_num_threads()}, "
        f"fp32 matmul {matmul_gflops():.0f} GFLOPS now (about 135 on this machine when idle)"
    )
    ours = run("ours", (kind, None), args.metric, args.device)
    print(_line("re-ranking (ours)", ours))
    if not (args.msmt or args.skip_baseline):
        subset = args.baseline_subset
        if subset is not None:
            ours_subset = run("ours", (kind, subset), args.metric, args.device)
            print(_line(f"re-ranking (ours, {subset} q)", ours_subset))
        classic = run("classic", (kind, subset), args.metric)
        label = "classic" if subset is None else f"classic ({subset} q)"
        print(_line(label, classic))
        reference = ours if subset is None else ours_subset
        print(f"  speed-up {classic['seconds'] / reference['seconds']:.1f}x, "
              f"|ΔmAP| {abs(classic['mAP'] - reference['mAP']):.2e}")  # fmt: skip
    if not args.skip_aqe:
        aqe = run("aqe_ours", (kind, None), args.metric, args.device)
        print(_line("query expansion (ours)", aqe))
        if not args.msmt:
            dense = run("aqe_dense", (kind, None), args.metric)
            print(_line("query expansion (dense)", dense))
            print(f"  speed-up {dense['seconds'] / aqe['seconds']:.1f}x, checksums "
                  f"{aqe['checksum']:.6g} vs {dense['checksum']:.6g}")  # fmt: skip


if __name__ == "__main__":
    main()
