"""Connecting to Ray: an existing cluster (`--address`, token auth) or a local one on demand.

Ray 2.60 turns token authentication on for clusters that `ray.init()` starts, and clients that
name an address never turn it on by themselves: they need `RAY_AUTH_MODE=token` (the token comes
from `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`), else they hang or fail
"Unauthenticated" (platform-facts §5.5).
"""

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray
from ray._raylet import Config as _RayConfig  # type: ignore[attr-defined]  # compiled, no stub
from ray.exceptions import RayError

from reid_platform.distributed.worker_scratch import remove_orphaned_scratch
from reid_platform.errors import ReidError

logger = logging.getLogger(__name__)

_QUIET_DEFAULTS = {
    # Offline clusters otherwise log failed posts to usage-stats.ray.io.
    "RAY_USAGE_STATS_ENABLED": "0",
    # V1 → V2 migration hints about APIs this package never uses.
    "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def use_token_auth() -> None:
    """Turn token authentication on for this process, unless `RAY_AUTH_MODE` says otherwise.

    Ray reads `RAY_AUTH_MODE` once, when it is imported; setting the variable afterwards only
    takes effect once its cached config is read again (what Ray's own `_enable_token_auth`
    does). Worker processes inherit the variable.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    _RayConfig.initialize("")


def connect(address: str) -> None:
    """Join the existing Ray cluster at `address` (`host:port`, `auto` or `ray://host:port`)."""
    use_token_auth()
    try:
        ray.init(address=address, log_to_driver=True)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError, RayError) as error:
        raise ReidError(
            f"cannot connect to the Ray cluster at {address} ({_first_line(error)}); "
            "check the address and that RAY_AUTH_TOKEN or ~/.ray/auth_token holds its token"
        ) from None
    logger.info("connected to the Ray cluster at %s", address)


def start_local(num_cpus: int) -> None:
    """Start a private local Ray with `num_cpus` logical CPUs (may exceed the physical cores)."""
    # address="local" never joins a stale `ray start` cluster left on this machine (pitfall P15).
    ray.init(address="local", num_cpus=num_cpus, log_to_driver=True)
    logger.info("started a local Ray with %d logical CPUs", num_cpus)


@contextmanager
def ray_session(address: str | None, *, cpus_needed: int) -> Iterator[None]:
    """Ray for the duration of the block; only a Ray started or joined here is shut down after.

    `address=None` starts a local Ray with at least `cpus_needed` logical CPUs unless this
    process is already connected (tests, notebooks), which is then used as it is.
    """
    for name, value in _QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if ray.is_initialized():
        yield
        return
    if address is not None:
        connect(address)
    else:
        start_local(max(os.cpu_count() or 1, cpus_needed))
    try:
        yield
    finally:
        ray.shutdown()
        if address is None:
            _remove_orphaned_scratch()


def _remove_orphaned_scratch() -> None:
    """The workers of the trials Tune stopped last were killed with their scratch folders;
    a failure here is logged, never raised over the search's own outcome."""
    try:
        remove_orphaned_scratch(Path(tempfile.gettempdir()))
    except OSError as error:
        logger.warning("could not remove stopped workers' scratch folders: %s", error)
