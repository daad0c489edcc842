"""Real concurrency: 16 OS processes race ``schedule_video`` on SQLite, PostgreSQL and MariaDB.

The racers are ``spawn``-ed once per module and reused for every engine and scenario (spawning
and importing SQLAlchemy costs about a CPU-second per process, too much to pay for every test on
a small machine). In each round every racer builds its own ``ScheduleManager`` from the database
URL with a fixed clock, opens a connection, waits on a shared ``Barrier`` and then fires its
attempts; each attempt reports either the booked schedule or the error's type. Afterwards the
tables are checked with plain SQL, never through the library:

* no channel day holds more schedules of a type than its daily limit, no slot is booked twice;
* the counter tables equal a recount of the schedules (daily counts and reserved quota), and no
  quota day is over its bucket limits;
* the rows are exactly the reported successes, and every refusal was a typed library error
  (``SlotUnavailableError``/``QuotaExceededError``; ``LockTimeoutError`` is allowed but counted)
  that the final state justifies (a "taken" slot really is booked, a "full" day really is full).

A second test holds the channel-day row lock from another connection and shows that
``schedule_video`` gives up with ``LockTimeoutError`` after ``lock_timeout`` and writes nothing.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sqlite3
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from langflix_scheduler.errors import LockTimeoutError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.quota import QuotaPolicy
from tests.integration.db_helpers import RawDB, as_date
from tests.procpool import RacerPool, lazy_pools

MakeManager = Callable[..., ScheduleManager]
VideoFile = Callable[..., Path]

RACERS = 16
T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # the conftest clock's start, a Monday
STARTUP_TIMEOUT = 60.0  # every racer spawned and imported
BARRIER_TIMEOUT = 30.0  # every racer connected for this round
ROUND_TIMEOUT = 45.0  # every racer reported for this round
RACE_LOCK_TIMEOUT = 5.0  # the default; a lock timeout in a race must have waited for real
ALLOWED_ERRORS = {"SlotUnavailableError", "QuotaExceededError", "LockTimeoutError"}


# -- what crosses the process boundary (module level, so spawn can pickle it) ----------------------


class FixedClock:
    """A picklable clock that always says ``at`` (aware)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class Attempt:
    video_type: str
    preferred: datetime | None = None
    channel: str | None = None
    title: str | None = None  # metadata title (default: from the file name)

    @property
    def label(self) -> str:
        return f"{'pref' if self.preferred else 'auto'}-{self.video_type}"


@dataclass(frozen=True)
class Task:
    """One racer's work for one round (plain data: ``SchedulerConfig`` holds mappingproxies)."""

    worker: int
    url: str
    video_path: str
    attempts: tuple[Attempt, ...]
    daily_limits: dict[str, int]
    buckets: dict[str, int]
    costs: dict[str, tuple[str, int]]
    horizon_days: int
    lock_timeout: float = RACE_LOCK_TIMEOUT
    # The slot races book one file many times on purpose: they opt out of duplicate refusal.
    allow_duplicate: bool = False


@dataclass(frozen=True)
class Outcome:
    worker: int
    attempt: Attempt
    error: str | None = None  # the exception's type name
    library_error: bool = False  # an instance of langflix_scheduler.errors.SchedulerError
    detail: str = ""
    schedule_id: int | None = None
    slot: datetime | None = None
    channel: str | None = None
    limit_name: str | None = None  # QuotaExceededError
    day: date | None = None  # QuotaExceededError
    elapsed: float = 0.0  # seconds the call took
    existing_id: int | None = None  # DuplicateVideoError


def _run_task(task: Task, barrier: Any) -> list[Outcome] | str:
    """Build a manager, meet the others at the barrier, fire the attempts. Never raises."""
    from langflix_scheduler.config import SchedulerConfig
    from langflix_scheduler.errors import SchedulerError

    manager: ScheduleManager | None = None
    setup_error = ""
    try:
        config = SchedulerConfig(
            database_url=task.url,
            daily_limits=task.daily_limits,
            quota_policy=QuotaPolicy(name="race", buckets=task.buckets, costs=task.costs),
            horizon_days=task.horizon_days,
            lock_timeout=task.lock_timeout,
        )
        manager = ScheduleManager(config, clock=FixedClock(T0))
        manager.check_daily_quota(T0.date())  # open a pooled connection before the start
    except Exception:
        setup_error = traceback.format_exc()
    try:
        # Always meet the others (even after a failed setup) so nobody waits for the timeout.
        barrier.wait(BARRIER_TIMEOUT)
        if manager is None:
            return f"racer {task.worker} setup failed:\n{setup_error}"
        outcomes: list[Outcome] = []
        for attempt in task.attempts:
            started = time.monotonic()
            try:
                booked = manager.schedule_video(
                    task.video_path,
                    attempt.video_type,
                    preferred_time=attempt.preferred,
                    channel=attempt.channel,
                    metadata=None if attempt.title is None else {"title": attempt.title},
                    allow_duplicate=task.allow_duplicate,
                )
            except Exception as exc:
                outcomes.append(
                    Outcome(
                        worker=task.worker,
                        attempt=attempt,
                        error=type(exc).__name__,
                        library_error=isinstance(exc, SchedulerError),
                        detail=str(exc)
                        if isinstance(exc, SchedulerError)
                        else traceback.format_exc(),
                        limit_name=getattr(exc, "limit_name", None),
                        day=getattr(exc, "day", None),
                        elapsed=time.monotonic() - started,
                        existing_id=getattr(exc, "existing_id", None),
                    )
                )
            else:
                outcomes.append(
                    Outcome(
                        worker=task.worker,
                        attempt=attempt,
                        schedule_id=booked.id,
                        slot=booked.scheduled_publish_time,
                        channel=booked.channel_id,
                        elapsed=time.monotonic() - started,
                    )
                )
        return outcomes
    except Exception:
        return f"racer {task.worker} failed:\n{traceback.format_exc()}"
    finally:
        if manager is not None:
            manager.close()


def _racer_main(tasks: Any, results: Any, barrier: Any) -> None:
    """A racer process: report ready, then run one task per round until told to stop."""
    results.put(("ready", os.getpid()))
    while True:
        task = tasks.get()
        if task is None:
            # Flush what was reported, then skip the interpreter's slow teardown of SQLAlchemy &
            # co. (about a second per racer on a small machine): nothing else is left to clean.
            results.close()
            results.join_thread()
            os._exit(0)
        results.put((task.worker, _run_task(task, barrier)))


def spawn_racers(size: int) -> RacerPool:
    """``size`` spawned racers running :func:`_racer_main` (booking tasks)."""
    return RacerPool(
        size,
        target=_racer_main,
        context=mp.get_context("spawn"),
        startup_timeout=STARTUP_TIMEOUT,
        round_timeout=ROUND_TIMEOUT,
    )


@pytest.fixture(scope="module")
def racer_pool() -> Iterator[Callable[[], RacerPool]]:
    """A lazily (re)started pool of spawned racers, shared by the tests and engines of this
    module."""
    yield from lazy_pools(lambda: spawn_racers(RACERS))


# -- checks with plain SQL ----------------------------------------------------------------------


def check_database(
    raw: RawDB,
    outcomes: list[Outcome],
    *,
    daily_limits: dict[str, int],
    buckets: dict[str, int],
    lock_timeout: float = RACE_LOCK_TIMEOUT,
) -> None:
    """Check the tables against the limits and against what the racers reported."""
    # Every caller got a schedule or a typed library error, nothing else.
    unexpected = [
        o for o in outcomes if o.error and (o.error not in ALLOWED_ERRORS or not o.library_error)
    ]
    assert unexpected == [], "\n".join(f"{o.attempt.label}: {o.detail}" for o in unexpected)
    # A lock timeout is only honest after a real wait (an instant "busy" is not a lock timeout).
    hasty = [o for o in outcomes if o.error == "LockTimeoutError" and o.elapsed < lock_timeout / 2]
    assert hasty == [], [(o.attempt.label, round(o.elapsed, 3)) for o in hasty]

    with raw.connect() as conn:
        # No slot is booked twice (per channel, among active schedules).
        twice = conn.execute(
            text(
                "SELECT channel_id, scheduled_publish_time, COUNT(*) FROM youtube_schedules"
                " WHERE upload_status IN ('scheduled', 'uploading', 'completed')"
                " GROUP BY channel_id, scheduled_publish_time HAVING COUNT(*) > 1"
            )
        ).all()
        assert twice == []
        # No channel day exceeds a daily limit, and the day counters equal the recount.
        recount = {
            (ch, as_date(day), vtype): n
            for ch, day, vtype, n in conn.execute(
                text(
                    "SELECT channel_id, publish_date, video_type, COUNT(*)"
                    " FROM youtube_schedules WHERE slot_key IS NOT NULL"
                    " GROUP BY channel_id, publish_date, video_type"
                )
            ).all()
        }
        counters = {
            (ch, as_date(day)): {"final": f, "short": s}
            for ch, day, f, s in conn.execute(
                text(
                    "SELECT channel_id, publish_date, final_count, short_count"
                    " FROM youtube_daily_limits"
                )
            ).all()
        }
    for (ch, day, vtype), n in recount.items():
        assert n <= daily_limits[vtype], (ch, day, vtype, n)
        assert counters[(ch, day)][vtype] == n, (ch, day, vtype, counters[(ch, day)])
    for (ch, day), counts in counters.items():
        for vtype, n in counts.items():
            assert n == recount.get((ch, day, vtype), 0), (ch, day, vtype, n)

    # The same, plus quota reserved == recount and <= limit, from the raw rows.
    rows = raw.check_invariants(daily_limits=daily_limits, bucket_limits=buckets)

    # The rows are exactly the reported successes.
    booked = {o.schedule_id: o for o in outcomes if o.error is None}
    assert len(booked) == len([o for o in outcomes if o.error is None])  # ids are unique
    assert {r.id for r in rows} == set(booked)
    by_id = {r.id: r for r in rows}
    for sid, o in booked.items():
        row = by_id[sid]
        assert (row.channel_id, row.scheduled_publish_time) == (o.channel, o.slot), (row, o)
        assert row.video_type == o.attempt.video_type
        assert row.upload_status == "scheduled"
        if o.attempt.preferred is not None:
            assert row.scheduled_publish_time == o.attempt.preferred

    # Every refusal of an exact time is justified by the final state (nothing is ever freed in
    # these rounds, so what was taken or full then is still taken or full now).
    active = {(r.channel_id, r.scheduled_publish_time) for r in rows}
    quota = raw.quota()
    for o in outcomes:
        if o.attempt.preferred is None or o.error is None:
            continue
        channel = o.attempt.channel or "default"
        if o.error == "SlotUnavailableError":
            assert (channel, o.attempt.preferred) in active, o
        elif o.error == "QuotaExceededError":
            assert o.limit_name, o
            assert o.day, o
            kind, _, name = o.limit_name.partition(":")
            if kind == "daily":
                assert recount.get((channel, o.day, name), 0) == daily_limits[name], o
            else:
                q = quota[("default", o.day, name)]
                assert q["reserved"] + q["used"] + 1 > buckets[name], (o, q)


def summary(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(f"{o.attempt.label}:{o.error or 'ok'}" for o in outcomes)


def tiny_policy(uploads: int) -> tuple[dict[str, int], dict[str, tuple[str, int]]]:
    return {"uploads": uploads, "shared": 10_000}, {"videos.insert": ("uploads", 1)}


def at(day: int, hour: int) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


# -- the races ------------------------------------------------------------------------------------


@pytest.mark.stress
def test_16_processes_race_for_one_channel_day(
    db_url: str, raw_db: RawDB, video_file: VideoFile, racer_pool: Callable[[], RacerPool]
) -> None:
    """Hot: everyone wants the same day; only 4 bookings fit (quota), 60 of 64 are refused.

    Horizon 1 day, so the only channel day with slots is 2026-05-04 (UTC channel); limits final 2,
    short 3; the uploads bucket of its one quota day allows 4. Each racer tries auto final, auto
    short, exactly 18:00 final and exactly 14:00 short (rotated order).
    """
    daily_limits = {"final": 2, "short": 3}
    buckets, costs = tiny_policy(uploads=4)
    plan = (
        Attempt("final"),
        Attempt("short"),
        Attempt("final", preferred=at(0, 18)),
        Attempt("short", preferred=at(0, 14)),
    )
    path = str(video_file(size=64))
    tasks = [
        Task(
            worker=i,
            url=db_url,
            video_path=path,
            attempts=plan[i % 4 :] + plan[: i % 4],
            daily_limits=daily_limits,
            buckets=buckets,
            costs=costs,
            horizon_days=1,
            allow_duplicate=True,
        )
        for i in range(RACERS)
    ]
    outcomes = racer_pool().run(tasks)

    assert len(outcomes) == RACERS * len(plan), summary(outcomes)
    check_database(raw_db, outcomes, daily_limits=daily_limits, buckets=buckets)
    ok = [o for o in outcomes if o.error is None]
    assert 1 <= len(ok) <= 4, summary(outcomes)
    assert {o.slot.date() for o in ok if o.slot} == {date(2026, 5, 4)}

    # If both types saw "nothing free" from the automatic search, the day must really be full:
    # finals full (2) or quota spent, and shorts full (3) or quota spent, so quota is spent (4).
    def saw_full(vtype: str) -> bool:
        return any(
            o.error == "SlotUnavailableError"
            and o.attempt.preferred is None
            and o.attempt.video_type == vtype
            and "no free" in o.detail
            for o in outcomes
        )

    if saw_full("final") and saw_full("short"):
        assert len(ok) == 4, summary(outcomes)
    lock_timeouts = sum(o.error == "LockTimeoutError" for o in outcomes)
    print(f"hot race: {dict(summary(outcomes))}; lock timeouts: {lock_timeouts}")


@pytest.mark.stress
def test_16_processes_race_over_spread_days_and_channels(
    db_url: str, raw_db: RawDB, video_file: VideoFile, racer_pool: Callable[[], RacerPool]
) -> None:
    """Spread: two channels, eight channel days, four quota days shared by both channels.

    Racer i works on channel ``a``/``b`` (by parity) and day 1 + (i // 2) % 4: two racers per
    channel day, four per quota day. Each tries every configured slot of its day exactly (final
    limit 1, short 3; the shared uploads bucket allows 5 a quota day, less than the 8 both
    channels could book), then one automatic final and short (which start on day 0 and spill
    into the contested days; a 14-day horizon has room for all of them). 16 x 9 = 144 attempts.
    """
    daily_limits = {"final": 1, "short": 3}
    buckets, costs = tiny_policy(uploads=5)
    tasks = []
    for i in range(RACERS):
        channel = "ab"[i % 2]
        day = 1 + (i // 2) % 4
        exact = [Attempt("final", at(day, h), channel) for h in (10, 18)] + [
            Attempt("short", at(day, h), channel) for h in (8, 11, 14, 17, 20)
        ]
        exact = exact[i % 7 :] + exact[: i % 7]
        attempts = (*exact, Attempt("final", None, channel), Attempt("short", None, channel))
        tasks.append(
            Task(
                worker=i,
                url=db_url,
                video_path=str(video_file(size=64)),
                attempts=attempts,
                daily_limits=daily_limits,
                buckets=buckets,
                costs=costs,
                horizon_days=14,
                allow_duplicate=True,
            )
        )
    outcomes = racer_pool().run(tasks)

    assert len(outcomes) == RACERS * 9, summary(outcomes)
    check_database(raw_db, outcomes, daily_limits=daily_limits, buckets=buckets)
    ok = [o for o in outcomes if o.error is None]
    lock_timeouts = sum(o.error == "LockTimeoutError" for o in outcomes)
    if lock_timeouts == 0:
        # Days 1-4 are fully contested by exact attempts on every slot, so each of their quota
        # days ends exactly at its limit (a refusal for any other reason would be a lost slot).
        quota = raw_db.quota()
        for day in range(1, 5):
            q = quota[("default", date(2026, 5, 4 + day), "uploads")]
            assert q["reserved"] == buckets["uploads"], (day, q)
        # The automatic attempts always find a slot within the 14-day horizon.
        auto = [o for o in outcomes if o.attempt.preferred is None]
        assert [o for o in auto if o.error is not None] == [], summary(outcomes)
        assert len(ok) >= 4 * buckets["uploads"]
    print(f"spread race: {dict(summary(outcomes))}; lock timeouts: {lock_timeouts}")


# -- a held lock ----------------------------------------------------------------------------------


@contextlib.contextmanager
def hold_day_lock(raw: RawDB, engine_name: str, channel: str, day: date) -> Iterator[None]:
    """Hold the channel-day row lock from a second connection (SQLite: the write lock)."""
    if engine_name == "sqlite":
        database = make_url(raw.url).database
        assert database
        con = sqlite3.connect(database, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            yield
            con.execute("ROLLBACK")
        finally:
            con.close()
        return
    with raw.engine.connect() as conn:
        trans = conn.begin()
        try:
            locked = conn.execute(
                text(
                    "SELECT final_count FROM youtube_daily_limits"
                    " WHERE channel_id = :c AND publish_date = :d FOR UPDATE"
                ),
                {"c": channel, "d": day},
            ).all()
            assert len(locked) == 1  # the row exists and is now ours
            yield
        finally:
            trans.rollback()


def test_held_day_lock_times_out_and_writes_nothing(
    make_manager: MakeManager, engine_name: str, raw_db: RawDB, video_file: VideoFile
) -> None:
    lock_timeout = 1.0
    mgr = make_manager(lock_timeout=lock_timeout, daily_limits={"final": 3, "short": 5})
    first = mgr.schedule_video(video_file(), "final", preferred_time=at(0, 10))
    assert first.publish_date == date(2026, 5, 4)  # the day row now exists
    before = raw_db.dump()

    with hold_day_lock(raw_db, engine_name, "default", date(2026, 5, 4)):
        # Exact time on the locked day, then the automatic search (which picks that day too).
        for preferred in (at(0, 18), None):
            started = time.monotonic()
            with pytest.raises(LockTimeoutError) as err:
                mgr.schedule_video(video_file(), "final", preferred_time=preferred)
            elapsed = time.monotonic() - started
            assert elapsed <= lock_timeout + 1.0, (preferred, elapsed)
            assert elapsed >= lock_timeout * 0.5, (preferred, elapsed)  # it really waited
            assert err.value.timeout == lock_timeout
        assert raw_db.dump() == before  # nothing written, not even a counter

    assert raw_db.dump() == before
    second = mgr.schedule_video(video_file(), "final")
    assert second.scheduled_publish_time == at(0, 18)
    rows = raw_db.check_invariants(
        daily_limits={"final": 3, "short": 5}, bucket_limits={"uploads": 100, "shared": 10_000}
    )
    assert [(r.id, r.slot_key) for r in rows] == [
        (first.id, at(0, 10)),
        (second.id, at(0, 18)),
    ]
    assert raw_db.day_counts()[("default", date(2026, 5, 4))] == {"final": 2, "short": 0}
