"""Two worker threads sharing a small host's cores, each running its numeric kernels alone.

On a host with two CPU threads a search that alternates matrix products (OpenBLAS, two threads)
with numpy, torch or faiss steps keeps several thread pools busy on two cores, and each pool's
idle workers spin for a while after their step, taking the core the next step needs (measured
on the project's 2-core host: 0.3-0.6 s of AQE's 3.8 CPU-seconds; re-ranking's bound products
alternating with torch selections lost about 1 s of 11). Here each of two worker threads runs
its products, torch steps and faiss loops single-threaded, so every task (a block of products
and its bookkeeping) has a core to itself and nothing spins. On larger hosts the libraries'
own threading is better, and `kernel_pool` gives no pool (the caller computes inline).
"""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from queue import SimpleQueue
from typing import Generic, TypeVar

import faiss
import torch
from threadpoolctl import threadpool_limits

T = TypeVar("T")

POOL_WORKERS = 2
"""Worker threads of the pool, which is used on hosts with exactly this many CPU threads."""


_open = 0
"""Kernel pools open in the process (0 or 1)."""
_open_lock = threading.Lock()


def _host_threads() -> int:
    """CPU threads the numeric libraries would use: faiss's (OpenMP) count."""
    return int(faiss.omp_get_max_threads())


def _single_threaded_faiss() -> None:
    """Worker start-up: OpenMP's thread count is per thread, so each worker sets its own, in
    the OpenMP runtime faiss's loops run on (torch's, when torch was imported first)."""
    faiss.omp_set_num_threads(1)


@contextmanager
def kernel_pool() -> Iterator[ThreadPoolExecutor | None]:
    """A POOL_WORKERS-thread pool whose BLAS, torch and faiss kernels run single-threaded, or
    None on a host with another number of CPU threads, or while another kernel pool is open
    (the limits it set are process-wide: the second caller computes inline).

    numpy's OpenBLAS and torch's intra-op threads are limited process-wide while the context is
    open (restored after), so another thread's work runs single-threaded meanwhile too; faiss
    only in the workers.
    """
    global _open
    with _open_lock:
        usable = _open == 0 and _host_threads() == POOL_WORKERS
        _open += usable
    if not usable:
        yield None
        return
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with (
            threadpool_limits(limits=1, user_api="blas"),
            ThreadPoolExecutor(POOL_WORKERS, initializer=_single_threaded_faiss) as pool,
        ):
            yield pool
    finally:
        torch.set_num_threads(torch_threads)
        with _open_lock:
            _open -= 1


class TaskBuffers(Generic[T]):
    """One reusable work buffer per task that can run at once: one per worker of `pool`, one
    without a pool. Reusing them avoids faulting in fresh pages for every task."""

    def __init__(self, pool: Executor | None, make: Callable[[], T]):
        self._free: SimpleQueue[T] = SimpleQueue()
        for _ in range(POOL_WORKERS if pool is not None else 1):
            self._free.put(make())

    @contextmanager
    def borrowed(self) -> Iterator[T]:
        """A buffer no other task holds, returned when the block ends."""
        buffer = self._free.get()
        try:
            yield buffer
        finally:
            self._free.put(buffer)
