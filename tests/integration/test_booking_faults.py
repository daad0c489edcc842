"""Issue 9, case 1: a booking whose COMMIT reply is lost is resolved, and a retry books nothing.

A real PostgreSQL and MariaDB behind ``tests/faultproxy.py``: the proxy forwards the COMMIT of
the transaction that inserted into ``youtube_schedules``, swallows the server's reply and resets
the client. The booking did commit; the library must find it (by idempotency key, fingerprint,
or the slot it inserted) and return it instead of raising a "retry later" error whose retry
would book the video twice. Tables are checked through a direct connection.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler import OutcomeUnknownError, ScheduleManager, SchedulerConfig
from langflix_scheduler.testing.clock import FakeClock
from tests.conftest import T0, FaultServer

VideoFile = Callable[..., Path]
INSERT = b"INSERT INTO youtube_schedules"
CONFIG: dict[str, Any] = {"daily_limits": {"final": 50, "short": 50}, "horizon_days": 30}
MODES: dict[str, dict[str, Any]] = {
    "next slot": {},
    "exact time": {"preferred_time": T0 + timedelta(days=1, hours=10)},
    "idempotency key": {"idempotency_key": "req-42"},
    "allow duplicate": {"allow_duplicate": True},
}


@pytest.fixture
def managers(
    fault_server: FaultServer, clock: FakeClock
) -> Iterator[tuple[ScheduleManager, ScheduleManager]]:
    """A manager through the proxy, and one straight to the server (faults never touch it)."""
    proxied = ScheduleManager(SchedulerConfig(database_url=fault_server.url, **CONFIG), clock=clock)
    direct = ScheduleManager(
        SchedulerConfig(database_url=fault_server.direct_url, **CONFIG), clock=clock
    )
    yield proxied, direct
    proxied.close()
    direct.close()


@pytest.mark.parametrize("mode", list(MODES))
def test_a_lost_commit_reply_is_resolved_and_a_retry_books_nothing(
    fault_server: FaultServer,
    managers: tuple[ScheduleManager, ScheduleManager],
    video_file: VideoFile,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    proxied, direct = managers
    kwargs = MODES[mode]
    path = video_file()
    fault_server.proxy.drop_commit_reply(INSERT)
    with caplog.at_level(logging.WARNING, logger="langflix_scheduler.manager"):
        first = proxied.book(path, "final", **kwargs)
    assert fault_server.proxy.commits_dropped == 1
    assert "the COMMIT in doubt did commit" in caplog.text
    assert first.created
    rows = direct.list_schedules()
    assert [r.id for r in rows] == [first.schedule.id]
    assert rows[0].scheduled_publish_time == first.schedule.scheduled_publish_time
    if mode != "allow duplicate":  # (that one asks for a new booking each time)
        retry = proxied.book(path, "final", **kwargs)
        assert (retry.created, retry.schedule.id) == (False, first.schedule.id)
        assert [r.id for r in direct.list_schedules()] == [first.schedule.id]
    assert direct.recalculate_quota().corrections == ()


def test_a_commit_that_did_not_happen_is_booked_again_once(
    fault_server: FaultServer,
    managers: tuple[ScheduleManager, ScheduleManager],
    video_file: VideoFile,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The look-up finds nothing (the commit was lost, not its reply): book again, once."""
    proxied, direct = managers
    real = proxied._attempt
    calls: list[int] = []

    def fail_first(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OutcomeUnknownError("schedule video", "simulated: connection lost at COMMIT")
        return real(*args)

    monkeypatch.setattr(proxied, "_attempt", fail_first)
    with caplog.at_level(logging.WARNING, logger="langflix_scheduler.manager"):
        booked = proxied.book(video_file(), "final")
    assert len(calls) == 2
    assert "did not commit; booking again" in caplog.text
    assert [r.id for r in direct.list_schedules()] == [booked.schedule.id]


def test_a_failed_look_up_says_the_outcome_is_unknown(
    fault_server: FaultServer,
    managers: tuple[ScheduleManager, ScheduleManager],
    video_file: VideoFile,
) -> None:
    """The server goes away with the reply: the look-up fails, and the error says retry is safe;
    the retry, once the server is back, returns the booking that did commit."""
    proxied, direct = managers
    path = video_file()
    proxied.get_next_available_slot("final")  # one pooled connection: the booking reuses it
    fault_server.proxy.drop_commit_reply(INSERT)
    fault_server.proxy.refuse_new()  # the look-up needs a new connection: refused
    with pytest.raises(OutcomeUnknownError) as err:
        proxied.book(path, "final")
    assert "retrying the same call is safe" in str(err.value)
    fault_server.proxy.refuse_new(False)
    retry = proxied.book(path, "final")
    assert retry.created is False
    assert [r.id for r in direct.list_schedules()] == [retry.schedule.id]
    assert direct.recalculate_quota().corrections == ()


def test_fifty_bookings_with_random_lost_commit_replies(
    fault_server: FaultServer,
    managers: tuple[ScheduleManager, ScheduleManager],
    video_file: VideoFile,
) -> None:
    proxied, direct = managers
    rng = random.Random(20261205)
    returned: dict[str, int] = {}
    dropped = unknown = replays = 0
    for i in range(50):
        path = video_file()
        kwargs: dict[str, Any] = {"idempotency_key": f"req-{i}"} if rng.random() < 0.3 else {}
        if rng.random() < 0.5:
            # Off the configured slots (whole hours), so automatic bookings never take it.
            kwargs["preferred_time"] = T0 + timedelta(days=1 + i // 10, hours=8, minutes=7 + i)
        video_type = rng.choice(["final", "short"])
        if rng.random() < 0.4:
            fault_server.proxy.drop_commit_reply(INSERT)
            dropped += 1
        for _ in range(3):  # the advice for OutcomeUnknownError: retry the same call
            try:
                booking = proxied.book(path, video_type, **kwargs)
                break
            except OutcomeUnknownError:
                unknown += 1
        else:
            pytest.fail(f"booking {i} kept ending in doubt")
        returned[str(path)] = booking.schedule.id
        if rng.random() < 0.2:  # a caller that retries anyway
            again = proxied.book(path, video_type, **kwargs)
            assert (again.created, again.schedule.id) == (False, booking.schedule.id)
            replays += 1
    assert fault_server.proxy.commits_dropped == dropped
    rows = direct.list_schedules()
    # Every call that returned has exactly its row, and no file is booked twice.
    assert {r.video_path: r.id for r in rows} == returned
    assert len(rows) == len(returned) == 50
    assert direct.recalculate_quota().corrections == ()
    print(f"50 bookings: {dropped} replies dropped, {unknown} in doubt, {replays} replays")
