"""Two worker threads sharing a small host's cores, each running its numeric kernels alone.

On a host with two CPU threads a search that alternates matrix products (OpenBLAS, two threads)
with numpy and faiss steps in a second Python thread keeps three thread pools busy on two
cores, and OpenBLAS's idle workers spin between products, taking the core the other thread
needs (measured on the project's 2-core host: 0.3-0.6 s of a 3.8 s CPU budget). Here each of
two worker threads runs its products and faiss loops single-threaded instead, so every task
(a product, a strip's bookkeeping) has a core to itself and nothing spins. On larger hosts the
libraries' own threading is better, and `kernel_pool` gives no pool (the caller computes inline).
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import faiss
from threadpoolctl import threadpool_limits

POOL_WORKERS = 2
"""Worker threads of the pool: the host's CPU threads when it has no more than this."""


def _host_threads() -> int:
    """CPU threads the numeric libraries would use: faiss's (OpenMP) count."""
    return int(faiss.omp_get_max_threads())


def _single_threaded_faiss() -> None:
    """Worker start-up: OpenMP's thread count is per thread, so each worker sets its own (for
    faiss's loops and the OpenBLAS faiss bundles, which share faiss's OpenMP runtime)."""
    faiss.omp_set_num_threads(1)


@contextmanager
def kernel_pool() -> Iterator[ThreadPoolExecutor | None]:
    """A POOL_WORKERS-thread pool whose BLAS and faiss kernels run single-threaded, or None on
    a host with another number of CPU threads.

    numpy's OpenBLAS is limited process-wide while the context is open (restored after), so
    another thread's products run single-threaded meanwhile too; faiss only in the workers.
    """
    if _host_threads() != POOL_WORKERS:
        yield None
        return
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=POOL_WORKERS, initializer=_single_threaded_faiss) as pool,
    ):
        yield pool
