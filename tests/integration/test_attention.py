"""``ScheduleManager.attention``: the one classification of what needs a look, on every engine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from langflix_scheduler import Attention
from langflix_scheduler.domain import VideoType
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.overview import explain
from langflix_scheduler.testing.clock import FakeClock
from tests.integration.db_helpers import RawDB


def _book(manager: ScheduleManager, video_file: Callable[..., Path], n: int) -> list[int]:
    return [
        manager.schedule_video(
            str(video_file()), VideoType.FINAL, metadata={"title": f"video {i}"}
        ).id
        for i in range(n)
    ]


def test_attention_classifies_each_problem_once(
    manager: ScheduleManager,
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    clock: FakeClock,
    raw_db: RawDB,
) -> None:
    stuck, failed, overdue, waiting, flying = _book(manager, video_file, 5)
    other = make_manager(channel="other-channel")
    (elsewhere,) = _book(other, video_file, 1)
    clock.advance(timedelta(days=40))  # every publish time has passed
    now = clock()
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'uploading', lease_owner = 'dead#1', "
        "lease_expires_at = created_at WHERE id = :i",
        i=stuck,
    )
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'uploading', lease_owner = 'alive#1', "
        "lease_expires_at = :t WHERE id = :i",
        i=flying,
        t=now + timedelta(minutes=5),
    )
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'failed', slot_key = NULL, "
        "last_error = 'invalidTitle: rejected' WHERE id = :i",
        i=failed,
    )
    raw_db.execute(
        "UPDATE youtube_schedules SET next_attempt_at = :t, attempts = 1, "
        "last_error = 'backendError' WHERE id = :i",
        i=waiting,
        t=now + timedelta(minutes=10),
    )

    att = manager.attention()

    assert isinstance(att, Attention)
    assert att.now == now
    assert [s.id for s in att.stuck] == [stuck]
    assert [s.id for s in att.in_flight] == [flying]
    assert [s.id for s in att.failed] == [failed]
    assert att.failed_total == 1
    assert [s.id for s in att.waiting] == [waiting]
    # Overdue: publish time passed and still scheduled, on every channel (the waiting one too:
    # it is late); due: only what the configured channel's next run would claim.
    assert sorted(s.id for s in att.overdue) == sorted([overdue, waiting, elsewhere])
    assert [s.id for s in att.due] == [overdue]
    assert att.due_elsewhere == {("other-channel", manager.config.api_project): 1}
    kinds = [kind for kind, _ in att.problems()]
    assert kinds == ["stuck", "failed", "overdue", "overdue", "overdue", "waiting"]
    assert not att.is_clear
    why = dict((s.id, explain(kind, s, manager.config.zone)) for kind, s in att.problems())
    assert "next processor run takes it back" in why[stuck]
    assert why[failed] == "invalidTitle: rejected"


def test_attention_limits_failed_but_counts_them_all(
    manager: ScheduleManager, video_file: Callable[..., Path], raw_db: RawDB
) -> None:
    ids = _book(manager, video_file, 3)
    for i in ids:
        raw_db.execute(
            "UPDATE youtube_schedules SET upload_status = 'failed', slot_key = NULL WHERE id = :i",
            i=i,
        )
    att = manager.attention(limit=2)
    assert len(att.failed) == 2
    assert att.failed_total == 3
    with pytest.raises(ValueError, match="limit"):
        manager.attention(limit=0)


def test_attention_on_a_quiet_database_is_clear(manager: ScheduleManager) -> None:
    att = manager.attention()
    assert att.is_clear
    assert att.problems() == []
    assert att.due == ()
