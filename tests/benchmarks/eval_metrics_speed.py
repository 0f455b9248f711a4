"""CMC + mAP + mINP from a precomputed distance matrix: ours against a per-row argsort baseline.

    python tests/benchmarks/eval_metrics_speed.py                    # Market-1501 scale
    python tests/benchmarks/eval_metrics_speed.py --msmt             # MSMT17 scale
    python tests/benchmarks/eval_metrics_speed.py --small            # quick check of the script

The baseline is the reference's pure-Python definition in numpy: a stable argsort of every
row, junk removal, cumulative sums. With `--baseline-queries N` it runs on the first N queries
only and its time is extrapolated linearly to all queries (said so in the output). Both must
agree on the queries the baseline ran on. Targets (issue 4): Market ≤ 0.5 s, MSMT17 ≤ 10 s.
"""

import argparse
import resource
import time
from collections.abc import Callable

import numpy as np
import torch
from eval_cases import EvalCase, market_like, msmt_like, small_case

from reid_platform.evaluation.ranking import evaluate_ranking


def cosine_distmat(case: EvalCase) -> np.ndarray:
    """(q, g) float32 cosine distances, 1 − q̂·ĝ."""
    query = torch.nn.functional.normalize(torch.from_numpy(case.q_feats), dim=1)
    gallery = torch.nn.functional.normalize(torch.from_numpy(case.g_feats), dim=1)
    return (1.0 - query @ gallery.T).numpy()


def baseline_ranking(
    distmat: np.ndarray, case: EvalCase, num_queries: int, max_rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cmc hits summed (max_rank,), AP, INP, valid query indices) of the first queries."""
    cmc_hits = np.zeros(max_rank)
    aps, inps, valid = [], [], []
    for i in range(num_queries):
        order = np.argsort(distmat[i], kind="stable")
        junk = (case.g_pids[order] == case.q_pids[i]) & (case.g_camids[order] == case.q_camids[i])
        matches = (case.g_pids[order][~junk] == case.q_pids[i]).astype(np.float64)
        if not matches.any():
            continue
        hits = np.cumsum(matches)
        cmc_hits += np.minimum(hits, 1.0)[:max_rank]
        aps.append((hits / np.arange(1, len(hits) + 1) * matches).sum() / hits[-1])
        last = np.flatnonzero(matches)[-1]
        inps.append(hits[last] / (last + 1))
        valid.append(i)
    return cmc_hits, np.array(aps), np.array(inps), np.array(valid)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def best_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--msmt", action="store_true", help="MSMT17 scale (11,659 x 82,161)")
    size.add_argument("--small", action="store_true", help="a few hundred images")
    parser.add_argument("--baseline-queries", type=int, default=None, help="baseline subset")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours (best kept)")
    args = parser.parse_args()

    case = msmt_like() if args.msmt else small_case() if args.small else market_like()
    print(f"case: {case.summary()}")
    start = time.perf_counter()
    distmat = cosine_distmat(case)
    print(f"cosine distmat {distmat.shape}: {time.perf_counter() - start:.2f} s")
    args_ = (distmat, case.q_pids, case.g_pids, case.q_camids, case.g_camids)

    result = evaluate_ranking(*args_)
    ours = best_time(lambda: evaluate_ranking(*args_), args.repeats)
    cuhk03 = best_time(lambda: evaluate_ranking(*args_, protocol="cuhk03_single_shot"), 1)
    print(
        f"ours: {ours:.3f} s (best of {args.repeats}); rank-1 {result.rank(1):.4f}, "
        f"mAP {result.mAP:.4f}, mINP {result.mINP:.4f}, {result.num_valid_queries} valid queries"
    )
    print(f"ours, cuhk03 single-shot (10 repeats): {cuhk03:.3f} s")

    num_q = len(case.q_pids)
    subset = min(args.baseline_queries or num_q, num_q)
    start = time.perf_counter()
    cmc_hits, aps, inps, valid = baseline_ranking(distmat, case, subset, 50)
    baseline = (time.perf_counter() - start) * num_q / subset
    note = "" if subset == num_q else f" (ran {subset} queries, extrapolated linearly)"
    print(f"baseline (per-row stable argsort): {baseline:.2f} s{note}")

    sub = evaluate_ranking(
        distmat[:subset], case.q_pids[:subset], case.g_pids, case.q_camids[:subset], case.g_camids
    )
    assert np.array_equal(sub.valid_queries, valid), "valid queries differ"
    assert np.allclose(sub.cmc, cmc_hits / len(valid), rtol=0, atol=1e-12), "CMC differs"
    assert np.allclose(sub.average_precision, aps, rtol=1e-12), "AP differs"
    assert np.allclose(sub.inverse_negative_penalty, inps, rtol=1e-12), "INP differs"
    print(f"agreement on {subset} queries: CMC, AP and INP identical (to 1e-12)")
    print(
        f"speed-up: {baseline / ours:.0f}x; peak RSS {peak_rss_gib():.2f} GiB "
        f"(distmat alone {distmat.nbytes / 2**30:.2f} GiB)"
    )


if __name__ == "__main__":
    main()
