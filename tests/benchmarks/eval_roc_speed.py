"""ROC speed: `evaluate_roc` against a straightforward numpy implementation of the same definition.

    python tests/benchmarks/eval_roc_speed.py            # Market-1501 scale (3,368 x 15,913)
    python tests/benchmarks/eval_roc_speed.py --msmt     # MSMT17 scale (11,659 x 82,161)
    python tests/benchmarks/eval_roc_speed.py --small    # a quick check of the script itself

The straightforward version builds (q, g) boolean masks, pulls out every genuine and impostor
distance and sorts both outright. Both must give identical TAR@FAR, histograms and curve points.
Memory: peak RSS of the process (the distance matrix included) and the numpy allocations made
inside `evaluate_roc` alone (tracemalloc, in a separate call so that timing is not disturbed).
"""

import argparse
import resource
import time
import tracemalloc

import numpy as np
import torch
from eval_cases import EvalCase, market_like, msmt_like, small_case

from reid_platform.evaluation.roc import RocResult, evaluate_roc
from reid_platform.metric_names import FAR_TARGETS


def cosine_distmat(case: EvalCase) -> np.ndarray:
    """(q, g) float32 1 − cosine similarity, one torch.mm of L2-normalised features."""
    q = torch.nn.functional.normalize(torch.from_numpy(case.q_feats), dim=1)
    g = torch.nn.functional.normalize(torch.from_numpy(case.g_feats), dim=1)
    distmat = torch.mm(q, g.T)
    distmat.neg_().add_(1.0)
    return distmat.numpy()


def straightforward_roc(distmat: np.ndarray, case: EvalCase, edges: np.ndarray) -> dict:
    """Sorted genuine and impostor distances by masks, TAR@FAR by its definition, histograms."""
    # Flat views: a 2-D boolean index would go through int64 nonzero() indices (15 GiB at MSMT).
    flat = distmat.ravel()
    same_pid = (case.q_pids[:, None] == case.g_pids[None, :]).ravel()
    same_cam = (case.q_camids[:, None] == case.g_camids[None, :]).ravel()
    genuine = flat[same_pid & ~same_cam]
    del same_cam
    impostor = flat[~same_pid]
    del same_pid
    genuine.sort()  # in place: at MSMT scale the impostor copy alone is 3.6 GiB
    impostor.sort()
    tar_at_far = {}
    for far in FAR_TARGETS:
        # k: the largest count with k / N ≤ far; accepted = strictly below impostor[k].
        n, k = len(impostor), int(far * len(impostor))
        k += (k + 1) / n <= far  # float rounding of far * n either way
        k -= k / n > far
        tar_at_far[far] = np.searchsorted(genuine, impostor[k], side="left") / len(genuine)
    return {
        "genuine": genuine,
        "impostor": impostor,
        "tar_at_far": tar_at_far,
        "genuine_counts": np.histogram(genuine, edges)[0],
        "impostor_counts": np.histogram(impostor, edges)[0],
    }


def check_agreement(ours: RocResult, ref: dict) -> None:
    assert ours.num_genuine == len(ref["genuine"]) and ours.num_impostor == len(ref["impostor"])
    assert ours.tar_at_far == ref["tar_at_far"], (ours.tar_at_far, ref["tar_at_far"])
    assert np.array_equal(ours.genuine_counts, ref["genuine_counts"])
    assert np.array_equal(ours.impostor_counts, ref["impostor_counts"])
    far = np.searchsorted(ref["impostor"], ours.thresholds, side="right") / ours.num_impostor
    tar = np.searchsorted(ref["genuine"], ours.thresholds, side="right") / ours.num_genuine
    assert np.array_equal(far, ours.far) and np.array_equal(tar, ours.tar)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--msmt", action="store_true", help="MSMT17 scale instead of Market-1501")
    size.add_argument("--small", action="store_true", help="a few hundred images")
    parser.add_argument("--no-baseline", action="store_true", help="skip the numpy version")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    case = msmt_like() if args.msmt else small_case() if args.small else market_like()
    distmat = cosine_distmat(case)
    pairs = distmat.size
    print(f"{case.summary()}: {pairs / 1e6:.1f}M pairs, torch threads {torch.get_num_threads()}")
    inputs = (distmat, case.q_pids, case.g_pids, case.q_camids, case.g_camids)

    ours_s, ours = timed(lambda: evaluate_roc(*inputs), args.repeats)
    assert isinstance(ours, RocResult)
    tracemalloc.start()
    evaluate_roc(*inputs)
    extra = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"ours:            {ours_s:8.3f} s (best of {args.repeats}), "
        f"numpy allocations peak {extra / 2**20:.0f} MiB"
    )
    print(
        f"  {ours.num_genuine} genuine, {ours.num_impostor} impostor, {len(ours.far)} curve points"
    )
    print("  TAR@FAR " + ", ".join(f"{x:g}: {t:.4f}" for x, t in ours.tar_at_far.items()))
    print(f"  peak RSS so far {peak_rss_gib():.2f} GiB (distmat {distmat.nbytes / 2**30:.2f} GiB)")
    if not args.no_baseline:
        base_s, ref = timed(lambda: straightforward_roc(distmat, case, ours.bin_edges), 1)
        assert isinstance(ref, dict)
        check_agreement(ours, ref)
        print(f"straightforward: {base_s:8.3f} s -> ours is {base_s / ours_s:.1f}x faster; agree")
        print(f"  peak RSS after it {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
