"""The kernel pool: single-threaded BLAS and faiss inside, the host's settings restored after."""

import faiss
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from reid_platform.evaluation import kernel_pool as kernel_pool_module
from reid_platform.evaluation.kernel_pool import POOL_WORKERS, kernel_pool


def _numpy_blas_threads() -> list[int]:
    """Threads of the BLAS that numpy's products (the search's bound products) run on: the
    OpenBLAS inside numpy's wheel."""
    return [
        int(entry["num_threads"])
        for entry in threadpool_info()
        if entry["user_api"] == "blas" and "numpy" in entry["filepath"]
    ]


def _settings() -> tuple[int, int, list[int]]:
    return int(faiss.omp_get_max_threads()), torch.get_num_threads(), _numpy_blas_threads()


def test_kernels_run_single_threaded_inside_and_the_settings_return_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernel_pool_module, "_host_threads", lambda: POOL_WORKERS)
    before = _settings()
    assert before[2]  # numpy's OpenBLAS is found
    with kernel_pool() as pool:
        assert pool is not None
        # Read from inside tasks: OpenMP's count is per thread, so it is the workers' that count.
        inside = [pool.submit(_settings).result() for _ in range(2 * POOL_WORKERS)]
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        product = pool.submit(np.matmul, a, a.T).result()
    assert inside == [(1, 1, [1] * len(before[2]))] * (2 * POOL_WORKERS)
    np.testing.assert_array_equal(product, a.astype(np.float64) @ a.T.astype(np.float64))
    assert _settings() == before


def test_settings_return_after_an_error_in_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_pool_module, "_host_threads", lambda: POOL_WORKERS)
    before = _settings()
    with pytest.raises(RuntimeError, match="strip failed"), kernel_pool():
        raise RuntimeError("strip failed")
    assert _settings() == before


def test_a_second_pool_while_one_is_open_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limits are process-wide: a nested (or concurrent) caller computes inline, and the
    first pool's closing restores the settings from before it."""
    monkeypatch.setattr(kernel_pool_module, "_host_threads", lambda: POOL_WORKERS)
    before = _settings()
    with kernel_pool() as outer:
        with kernel_pool() as inner:
            assert outer is not None and inner is None
        assert outer.submit(_settings).result() == (1, 1, [1] * len(before[2]))
    assert _settings() == before
    with kernel_pool() as again:  # and the next caller gets a pool again
        assert again is not None


@pytest.mark.parametrize("threads", [1, 4, 16])
def test_other_hosts_get_no_pool_and_keep_their_threads(
    threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel_pool_module, "_host_threads", lambda: threads)
    before = _settings()
    with kernel_pool() as pool:
        assert pool is None
        assert _settings() == before
