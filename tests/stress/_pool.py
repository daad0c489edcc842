"""Process plumbing shared by the stress tests: a ``forkserver`` context with the workers preloaded,
bounded waits, and the sizes (overridable through environment variables for local runs)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import time
from multiprocessing.context import BaseContext
from typing import Any

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


class HammerPool:
    """``size`` racer processes sharing a task queue, a result queue and a cyclic barrier."""

    def __init__(self, size: int, *, startup_timeout: float = 120.0) -> None:
        ctx = context()
        self.size = size
        self.tasks: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.barrier: Any = ctx.Barrier(size)
        self.procs = [
            ctx.Process(  # type: ignore[attr-defined]
                target=_workers.hammer_main,
                args=(self.tasks, self.results, self.barrier),
                name=f"hammer-{i}",
                daemon=True,
            )
            for i in range(size)
        ]
        self.broken = False
        try:
            for p in self.procs:
                p.start()
            deadline = time.monotonic() + startup_timeout
            for _ in range(size):
                kind, _pid = self.get(deadline, "starting the racers")
                assert kind == "ready"
        except BaseException:
            self.close()
            raise

    def get(self, deadline: float, what: str) -> Any:
        """The next result; fails at ``deadline``, or at once when a racer died."""
        while True:
            try:
                return self.results.get(timeout=0.5)
            except queue.Empty:
                dead = [p.exitcode for p in self.procs if not p.is_alive()]
                if dead or time.monotonic() >= deadline:
                    self.broken = True
                    reason = f"racers died, exit codes {dead}" if dead else "timed out"
                    raise AssertionError(f"{what}: {reason}") from None

    def run(self, tasks: list[Any], *, timeout: float) -> list[Any]:
        """One round: every racer runs one task, all starting together."""
        assert len(tasks) == self.size
        for t in tasks:
            self.tasks.put(t)
        deadline = time.monotonic() + timeout
        outcomes: list[Any] = []
        failures: list[str] = []
        for _ in tasks:
            _worker, result = self.get(deadline, "waiting for the racers")
            if isinstance(result, str):
                failures.append(result)
            else:
                outcomes.extend(result)
        if failures:
            self.broken = True
            raise AssertionError("\n".join(failures))
        return outcomes

    def close(self) -> None:
        """Stop the racers: politely, then by force; every join is bounded."""
        for _ in self.procs:
            with contextlib.suppress(Exception):
                self.tasks.put(None)
        deadline = time.monotonic() + 10.0
        for p in self.procs:
            if p.pid is not None:
                p.join(timeout=max(0.1, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5.0)
        for q in (self.tasks, self.results):
            q.close()
            q.cancel_join_thread()
