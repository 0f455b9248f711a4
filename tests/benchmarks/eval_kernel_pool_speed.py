"""Kernel pool on and off: re-ranking and AQE timed alternately in one process, with a ratio.

    python tests/benchmarks/eval_kernel_pool_speed.py              # Market-1501 scale, 4 rounds
    python tests/benchmarks/eval_kernel_pool_speed.py --rounds 8
    python tests/benchmarks/eval_kernel_pool_speed.py --small      # a quick check of the script

On a 2-thread host the searches run their products and bookkeeping as tasks of
`evaluation.kernel_pool` (single-threaded BLAS, torch and faiss per worker). "off" replaces the
pool with none, which is the path every other host takes (2-thread libraries, the calling
thread computing and one worker answering). The host's speed drifts from minute to minute,
so the two variants alternate round by round and the medians are compared; both must give the
same re-ranked mAP and the same AQE checksum.
"""

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
from eval_cases import EvalCase, market_like, small_case

from reid_platform.evaluation import knn_symmetric_search, rerank_projected_search
from reid_platform.evaluation.kernel_pool import kernel_pool
from reid_platform.evaluation.query_expansion import average_query_expansion
from reid_platform.evaluation.ranking import evaluate_ranking
from reid_platform.evaluation.rerank import k_reciprocal_rerank

USERS = (knn_symmetric_search, rerank_projected_search)
"""The modules that open a kernel pool."""


@contextmanager
def no_pool() -> Iterator[None]:
    yield None


def use(pool: Callable[[], AbstractContextManager[Any]]) -> None:
    for module in USERS:
        module.kernel_pool = pool  # type: ignore[attr-defined]


def rerank_map(case: EvalCase) -> float:
    distances = k_reciprocal_rerank(case.q_feats, case.g_feats, metric="cosine")
    return evaluate_ranking(distances, case.q_pids, case.g_pids, case.q_camids, case.g_camids).mAP


def aqe_checksum(case: EvalCase) -> float:
    q, g = average_query_expansion(case.q_feats, case.g_feats)
    return float(np.abs(q).sum() + np.abs(g).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    case = small_case() if args.small else market_like()
    print(case.summary())
    tasks: dict[str, Callable[[EvalCase], float]] = {
        "re-ranking": rerank_map,
        "query expansion": aqe_checksum,
    }
    variants = {"on": kernel_pool, "off": no_pool}
    for label, task in tasks.items():
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        results: dict[str, float] = {}
        task(case)  # warm-up: first calls pay for imports and caches
        for _ in range(args.rounds):
            for name, pool in variants.items():
                use(pool)
                start = time.perf_counter()
                results[name] = task(case)
                seconds[name].append(time.perf_counter() - start)
        use(kernel_pool)
        on, off = statistics.median(seconds["on"]), statistics.median(seconds["off"])
        print(
            f"  {label:<16} pool on {on:6.2f} s, off {off:6.2f} s (medians of {args.rounds}), "
            f"off/on {off / on:.2f}x, results {results['on']:.6g} vs {results['off']:.6g}"
        )


if __name__ == "__main__":
    main()
