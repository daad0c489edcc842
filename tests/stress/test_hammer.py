"""The hammer: 32 OS processes x 50 ``schedule_video`` attempts per engine, limits so tight that
most are refused; afterwards the tables are checked in plain SQL.

Two channels, a five-day horizon, daily limits of 1 final and 2 shorts per channel day, and 4
uploads per quota day for the whole API project: at most a few dozen of the 1,600 attempts can
succeed. Each racer mixes automatic slots, exact configured slots (the same instants wanted by
many racers at once) and exact off-grid instants, in its own seeded order. Checked afterwards:

* every attempt got a schedule or a typed library error (``SlotUnavailableError``,
  ``QuotaExceededError``, or ``LockTimeoutError`` after a real wait), nothing else;
* no channel day over its limits, no slot booked twice, counters equal to a recount of the
  schedules, no quota day over its bucket limit (plain SQL, ``RawDB.check_invariants``);
* the rows are exactly the reported successes, at the reported instants;
* every refusal is justified by the final state (nothing is freed during the round): a "taken"
  instant is booked, a "full" day or quota day is at its limit, and an automatic search that
  found nothing still finds nothing.

Sizes: ``LANGFLIX_STRESS_PROCESSES`` (default 32) and ``LANGFLIX_STRESS_ATTEMPTS`` (default 50).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.errors import SlotUnavailableError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.quota import QuotaPolicy
from tests.integration.db_helpers import RawDB
from tests.procpool import RacerPool, lazy_pools
from tests.stress._pool import HammerPool, env_int
from tests.stress._workers import Attempt, FixedClock, HammerTask, Outcome

pytestmark = pytest.mark.stress

PROCESSES = env_int("PROCESSES", 32)
ATTEMPTS = env_int("ATTEMPTS", 50)
T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # a Monday; the conftest clock's start
HORIZON_DAYS = 5
DAILY_LIMITS = {"final": 1, "short": 2}
BUCKETS = {"uploads": 4}
LOCK_TIMEOUT = 10.0
ROUND_TIMEOUT = 170.0
ALLOWED = {"SlotUnavailableError", "QuotaExceededError", "LockTimeoutError"}
SLOT_HOURS = {"final": (10, 18), "short": (8, 11, 14, 17, 20)}


@pytest.fixture(scope="module")
def hammer_pool() -> Iterator[Callable[[], RacerPool]]:
    """The racers, started once (a forkserver forks them) and shared by every engine."""
    yield from lazy_pools(lambda: HammerPool(PROCESSES))


def plan(worker: int) -> tuple[Attempt, ...]:
    """A racer's attempts: 30 % automatic, 50 % exact configured slots, 20 % off-grid."""
    rng = random.Random(worker)
    out = []
    for _ in range(ATTEMPTS):
        channel = rng.choice("ab")
        vtype = rng.choice(("final", "short"))
        roll = rng.random()
        day = T0 + timedelta(days=rng.randrange(HORIZON_DAYS))
        if roll < 0.3:
            preferred = None
        elif roll < 0.8:
            preferred = day + timedelta(hours=rng.choice(SLOT_HOURS[vtype]))
        else:
            preferred = day + timedelta(minutes=rng.randrange(30, 23 * 60, 15))
        out.append(Attempt(channel=channel, video_type=vtype, preferred=preferred))
    return tuple(out)


def manager_for(url: str) -> ScheduleManager:
    """A manager configured like the racers' (for the after-the-fact automatic search)."""
    policy = QuotaPolicy(name="hammer", buckets=BUCKETS, costs={"videos.insert": ("uploads", 1)})
    config = SchedulerConfig(
        database_url=url,
        timezone="UTC",
        daily_limits=DAILY_LIMITS,
        quota_policy=policy,
        horizon_days=HORIZON_DAYS,
        lock_timeout=LOCK_TIMEOUT,
    )
    return ScheduleManager(config, clock=FixedClock(T0))


def check(raw: RawDB, url: str, outcomes: list[Outcome]) -> None:
    """Every invariant, in plain SQL, plus a justification of every refusal."""
    unexpected = [
        o for o in outcomes if o.error and (o.error not in ALLOWED or not o.library_error)
    ]
    assert unexpected == [], "\n".join(f"{o.attempt}: {o.error}: {o.detail}" for o in unexpected)
    hasty = [o for o in outcomes if o.error == "LockTimeoutError" and o.elapsed < LOCK_TIMEOUT / 2]
    assert hasty == [], hasty

    rows = raw.check_invariants(daily_limits=DAILY_LIMITS, bucket_limits=BUCKETS)

    ok = [o for o in outcomes if o.error is None]
    assert len({o.schedule_id for o in ok}) == len(ok)
    by_id = {r.id: r for r in rows}
    assert set(by_id) == {o.schedule_id for o in ok}
    for o in ok:
        row = by_id[o.schedule_id]  # type: ignore[index]
        assert (row.channel_id, row.scheduled_publish_time) == (o.attempt.channel, o.slot), o
        assert row.video_type == o.attempt.video_type
        assert row.upload_status == "scheduled"
        if o.attempt.preferred is not None:
            assert row.scheduled_publish_time == o.attempt.preferred

    active = {(r.channel_id, r.scheduled_publish_time) for r in rows}
    recount = Counter((r.channel_id, r.publish_date, r.video_type) for r in rows)
    quota = raw.quota()
    auto_refused = set()
    for o in outcomes:
        if o.error == "SlotUnavailableError" and o.attempt.preferred is not None:
            assert (o.attempt.channel, o.attempt.preferred) in active, o
        elif o.error == "SlotUnavailableError":
            auto_refused.add((o.attempt.channel, o.attempt.video_type))
        elif o.error == "QuotaExceededError":
            assert o.limit_name, o
            assert o.day, o
            kind, _, name = o.limit_name.partition(":")
            if kind == "daily":
                assert recount[(o.attempt.channel, o.day, name)] == DAILY_LIMITS[name], o
            else:
                q = quota[("default", o.day, name)]
                assert q["reserved"] + q["used"] + 1 > BUCKETS[name], (o, q)
    with manager_for(url) as mgr:
        for channel, vtype in sorted(auto_refused):
            with pytest.raises(SlotUnavailableError):
                mgr.get_next_available_slot(vtype, channel=channel)


def test_hammer(
    db_url: str,
    engine_name: str,
    raw_db: RawDB,
    video_file: Callable[..., Path],
    hammer_pool: Callable[[], RacerPool],
) -> None:
    path = str(video_file(size=64))
    tasks = [
        HammerTask(
            worker=i,
            url=db_url,
            video_path=path,
            now=T0,
            attempts=plan(i),
            daily_limits=DAILY_LIMITS,
            buckets=BUCKETS,
            horizon_days=HORIZON_DAYS,
            lock_timeout=LOCK_TIMEOUT,
        )
        for i in range(PROCESSES)
    ]
    pool = hammer_pool()
    started = time.monotonic()
    outcomes = pool.run(tasks, timeout=ROUND_TIMEOUT)
    elapsed = time.monotonic() - started

    assert len(outcomes) == PROCESSES * ATTEMPTS
    check(raw_db, db_url, outcomes)
    tally = Counter(o.error or "booked" for o in outcomes)
    assert tally["booked"] >= 1
    assert tally["booked"] < len(outcomes) / 2, "the limits are meant to refuse most attempts"
    print(
        f"hammer {engine_name}: {PROCESSES} processes x {ATTEMPTS} attempts in {elapsed:.1f} s: "
        f"{dict(tally)}"
    )
