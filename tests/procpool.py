"""One pool of racer processes for the concurrency and stress tests.

``size`` processes share a task queue, a result queue and a cyclic ``Barrier(size)``: with
``size`` tasks per round every racer takes exactly one task per round (a racer holding a task
cannot take another before all of them hold one), so the tasks of a round start together. A
racer's ``target(tasks, results, barrier)`` reports ``("ready", pid)`` first, then one
``(worker, outcomes | error text)`` per task, and stops at ``None``. Every wait is bounded, and a
dead racer fails the round at once.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Iterator
from multiprocessing.context import BaseContext
from typing import Any


class RacerPool:
    """``size`` racer processes running ``target``."""

    def __init__(
        self,
        size: int,
        *,
        target: Callable[[Any, Any, Any], None],
        context: BaseContext,
        name: str = "racer",
        startup_timeout: float = 120.0,
        round_timeout: float = 60.0,
    ) -> None:
        self.size = size
        self.round_timeout = round_timeout
        self.tasks: Any = context.Queue()
        self.results: Any = context.Queue()
        self.barrier: Any = context.Barrier(size)
        self.procs = [
            context.Process(  # type: ignore[attr-defined]
                target=target,
                args=(self.tasks, self.results, self.barrier),
                name=f"{name}-{i}",
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

    def run(self, tasks: list[Any], *, timeout: float | None = None) -> list[Any]:
        """One round: every racer runs one task, all starting together. Bounded in time."""
        assert len(tasks) == self.size
        for t in tasks:
            self.tasks.put(t)
        deadline = time.monotonic() + (self.round_timeout if timeout is None else timeout)
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
                p.terminate()
                p.join(timeout=5.0)
            if p.is_alive():
                p.kill()
                p.join(timeout=5.0)
        for q in (self.tasks, self.results):
            q.close()
            q.cancel_join_thread()


def lazy_pools(start: Callable[[], RacerPool]) -> Iterator[Callable[[], RacerPool]]:
    """For a module-scoped fixture: a getter that starts the pool on first use and restarts it
    after a broken round; every pool is closed at the end."""
    pools: list[RacerPool] = []

    def get() -> RacerPool:
        if pools and pools[-1].broken:
            pools.pop().close()
        if not pools:
            pools.append(start())
        return pools[-1]

    yield get
    for p in pools:
        p.close()
