"""Process plumbing shared by the stress tests: a ``forkserver`` context with the workers preloaded,
bounded waits, and the sizes (overridable through environment variables for local runs)."""

from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing.context import BaseContext

from tests.procpool import RacerPool
from tests.stress import _workers


def env_int(name: str, default: int) -> int:
    """``LANGFLIX_STRESS_<name>`` as an int, else ``default``."""
    value = os.environ.get(f"LANGFLIX_STRESS_{name}")
    return int(value) if value else default


def context() -> BaseContext:
    """A ``forkserver`` context whose server has imported the workers (and so the library)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([_workers.__name__])
    return ctx


def HammerPool(size: int, *, startup_timeout: float = 120.0) -> RacerPool:
    """``size`` hammer racers forked by the preloaded forkserver (see :mod:`tests.procpool`)."""
    return RacerPool(
        size,
        target=_workers.hammer_main,
        context=context(),
        name="hammer",
        startup_timeout=startup_timeout,
    )
