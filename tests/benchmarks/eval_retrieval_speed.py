"""Large-gallery retrieval: faiss flat vs IVF-Flat vs IVF-PQ, and exact streaming evaluation.

Run on demand (not part of the test suite):

    python tests/benchmarks/eval_retrieval_speed.py [--gallery 1000000 --queries 1000 --dim 256]

A synthetic re-id case (eval_cases.synthetic_case) with a gallery made mostly of distractors.
1. Search: top-k of every query through a flat (exact), an IVF-Flat and an IVF-PQ index,
   timed (build and search) against a chunked numpy brute force (matmul + argpartition);
   recall@k of each index against the exact top-k, and its top-k metrics (evaluate_top_k).
2. Exact metrics: evaluate_streaming over all queries (distances one query chunk at a time),
   its peak resident memory against the size the dense q x g float32 matrix would have, and
   a straightforward numpy evaluation (dense distances, full argsort per query) on the first
   --baseline-queries queries, timed per query and checked equal.
"""

import argparse
import contextlib
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np
from eval_cases import EvalCase, synthetic_case

from reid_platform.evaluation.retrieval import (
    FlatSpec,
    GalleryIndex,
    IndexSpec,
    IvfFlatSpec,
    IvfPqSpec,
)
from reid_platform.evaluation.retrieval_metrics import evaluate_streaming, evaluate_top_k

T = TypeVar("T")
STATUS = Path("/proc/self/status")


def rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process in MiB."""
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_during(fn: Callable[[], T]) -> tuple[T, float, float]:
    """(result, seconds, peak RSS growth in MiB over the RSS before the call)."""
    before = rss_mib("VmRSS")
    with contextlib.suppress(OSError):  # "5" resets the peak (VmHWM) to the RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds, rss_mib("VmHWM") - before


def numpy_top_k(case: EvalCase, k: int, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top-k by brute force: normalised matmul per query chunk, argpartition, sort."""
    g = case.g_feats / np.linalg.norm(case.g_feats, axis=1, keepdims=True)
    ids = np.empty((len(case.q_feats), k), np.int64)
    dists = np.empty((len(case.q_feats), k), np.float32)
    for start in range(0, len(case.q_feats), chunk):
        q = case.q_feats[start : start + chunk]
        d = 1.0 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ g.T
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1, kind="stable")
        ids[start : start + chunk] = np.take_along_axis(part, order, axis=1)
        dists[start : start + chunk] = np.take_along_axis(d, ids[start : start + chunk], axis=1)
    return dists, ids


def numpy_average_precision(case: EvalCase, rows: slice) -> np.ndarray:
    """Reference-style per-query loop: dense distances, full argsort, junk removed; AP per query."""
    g = case.g_feats / np.linalg.norm(case.g_feats, axis=1, keepdims=True)
    q = case.q_feats[rows] / np.linalg.norm(case.q_feats[rows], axis=1, keepdims=True)
    distmat = 1.0 - q @ g.T
    aps = []
    for i, (pid, cam) in enumerate(zip(case.q_pids[rows], case.q_camids[rows], strict=True)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((case.g_pids[order] == pid) & (case.g_camids[order] == cam))
        r = (case.g_pids[order][keep] == pid).astype(np.float64)
        if r.sum() == 0:
            continue
        hits = np.cumsum(r)
        aps.append(float((hits / np.arange(1, len(r) + 1) * r).sum() / r.sum()))
    return np.array(aps)


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    found = [len(np.intersect1d(a, e)) / exact.shape[1] for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(found))


def bench_index(
    case: EvalCase, spec: IndexSpec, k: int, exact: np.ndarray | None, nprobes: list[int]
) -> np.ndarray:
    """Build an index, then search it at each nprobe (IVF kinds); returns the last ids."""
    start = time.perf_counter()
    index = GalleryIndex.build(case.g_feats, metric="cosine", spec=spec)
    print(f"  {type(spec).__name__:12s} build {time.perf_counter() - start:7.2f} s")
    indices = np.zeros(0, np.int64)
    for nprobe in nprobes if not isinstance(spec, FlatSpec) else [0]:
        if nprobe:
            index.set_nprobe(nprobe)
        start = time.perf_counter()
        distances, indices = index.search(case.q_feats, k)
        searched = time.perf_counter() - start
        top = evaluate_top_k(
            distances, indices, case.q_pids, case.g_pids, case.q_camids, case.g_camids, max_rank=k
        )
        recall = 1.0 if exact is None else recall_at_k(indices, exact)
        print(
            f"    nprobe {nprobe:4d}  search {searched:7.2f} s "
            f"({searched / len(case.q_feats) * 1e3:6.2f} ms/query)  recall@{k} {recall:.4f}  "
            f"mAP@{k} {top.mAP:.4f}  rank1 {top.rank(1):.4f}"
        )
    return indices


def bench_search(case: EvalCase, args: argparse.Namespace) -> None:
    k = args.k
    print(f"search, top-{k}, cosine:")
    start = time.perf_counter()
    _, numpy_ids = numpy_top_k(case, k)
    numpy_seconds = time.perf_counter() - start
    print(f"  numpy brute force        search {numpy_seconds:7.2f} s")
    start = time.perf_counter()
    exact = bench_index(case, FlatSpec(), k, None, [])
    flat_seconds = time.perf_counter() - start
    print(
        f"  flat == numpy top-{k} ids: {np.mean(exact == numpy_ids):.5f} of entries; "
        f"numpy / flat (build + search) time: {numpy_seconds / flat_seconds:.2f}x"
    )
    nprobes = sorted({min(args.nprobe * f, args.nlist) for f in (1, 4, 16)})
    bench_index(case, IvfFlatSpec(nlist=args.nlist, nprobe=args.nprobe), k, exact, nprobes)
    pq = IvfPqSpec(nlist=args.nlist, nprobe=args.nprobe, m=args.pq_m, bits=args.pq_bits)
    bench_index(case, pq, k, exact, nprobes)


def bench_streaming(case: EvalCase, args: argparse.Namespace) -> None:
    num_q, num_g = len(case.q_pids), len(case.g_pids)
    print(f"exact streaming evaluation, cosine, {num_q} queries:")
    result, seconds, peak = peak_rss_during(
        lambda: evaluate_streaming(
            case.q_feats,
            case.g_feats,
            case.q_pids,
            case.g_pids,
            case.q_camids,
            case.g_camids,
            metric="cosine",
            max_rank=args.k,
        )
    )
    dense_mib = num_q * num_g * 4 / 2**20
    print(
        f"  {seconds:.2f} s ({seconds / num_q * 1e3:.2f} ms/query)  mAP {result.mAP:.4f}  "
        f"rank1 {result.rank(1):.4f}  mINP {result.mINP:.4f}  valid {result.num_valid_queries}"
    )
    print(
        f"  peak RSS growth {peak:.0f} MiB vs dense q x g float32 {dense_mib:.0f} MiB "
        f"(+ {2 * dense_mib:.0f} MiB for a reference-style int64 argsort)"
    )
    rows = slice(0, args.baseline_queries)
    start = time.perf_counter()
    aps = numpy_average_precision(case, rows)
    base_seconds = time.perf_counter() - start
    ours = result.average_precision[result.valid_queries < args.baseline_queries]
    per_query = seconds / num_q
    print(
        f"  numpy per-query loop on {args.baseline_queries} queries: "
        f"{base_seconds / args.baseline_queries * 1e3:.1f} ms/query, "
        f"{base_seconds / args.baseline_queries / per_query:.1f}x slower per query; "
        f"max |AP diff| {np.abs(aps - ours).max():.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--ids", type=int, default=1000, help="query identities")
    parser.add_argument("--distractor-fraction", type=float, default=0.98)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--pq-m", type=int, default=32)
    parser.add_argument("--pq-bits", type=int, default=8)
    parser.add_argument("--baseline-queries", type=int, default=50)
    parser.add_argument("--faiss-threads", type=int, default=faiss.omp_get_max_threads())
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-streaming", action="store_true")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.faiss_threads)
    start = time.perf_counter()
    case = synthetic_case(
        num_query=args.queries,
        num_gallery=args.gallery,
        num_ids=args.ids,
        num_cams=6,
        dim=args.dim,
        latent_dim=min(args.dim, 256),
        distractor_fraction=args.distractor_fraction,
    )
    print(
        f"case: {case.summary()} built in {time.perf_counter() - start:.1f} s; gallery "
        f"features {case.g_feats.nbytes / 2**20:.0f} MiB; faiss threads {args.faiss_threads}; "
        f"RSS {rss_mib('VmRSS'):.0f} MiB"
    )
    if not args.skip_search:
        bench_search(case, args)
    if not args.skip_streaming:
        bench_streaming(case, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
