"""Alembic migrations on SQLite, PostgreSQL and MariaDB, each on a brand-new private database.

``upgrade head`` must produce exactly the ORM metadata, ``downgrade base`` must leave nothing
but ``alembic_version``, the round trip must work, and concurrent ``init_db`` calls must all
succeed.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.db import migrate
from langflix_scheduler.db.engine import Database, create_engine
from langflix_scheduler.db.models import Base
from langflix_scheduler.manager import ScheduleManager
from tests.conftest import TestDatabase

# Whatever the ORM declares (later revisions add tables), and at least the core ones.
EXPECTED_TABLES = set(Base.metadata.tables)
assert {"youtube_schedules", "youtube_daily_limits", "youtube_quota_usage"} <= EXPECTED_TABLES


@pytest.fixture
def db(fresh_database: TestDatabase) -> Iterator[Database]:
    database = Database(create_engine(fresh_database.url), lock_timeout=5.0)
    yield database
    database.dispose()


def schema_diff(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def test_upgrade_head_matches_orm_metadata(db: Database) -> None:
    assert tables(db) == set()
    assert migrate.current_revision(db) is None
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision()
    assert tables(db) == EXPECTED_TABLES | {"alembic_version"}
    assert schema_diff(db) == []


def test_schema_has_the_slot_uniqueness_and_indexes(db: Database) -> None:
    migrate.upgrade(db)
    insp = inspect(db.engine)
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("youtube_schedules")}
    unique_indexes = {
        tuple(i["column_names"]) for i in insp.get_indexes("youtube_schedules") if i["unique"]
    }
    assert ("channel_id", "slot_key") in uniques | unique_indexes
    indexes = {i["name"] for i in insp.get_indexes("youtube_schedules")}
    assert {
        "ix_youtube_schedules_due",
        "ix_youtube_schedules_channel_day",
        "ix_youtube_schedules_lease",
    } <= indexes
    assert insp.get_pk_constraint("youtube_daily_limits")["constrained_columns"] == [
        "channel_id",
        "publish_date",
    ]
    assert insp.get_pk_constraint("youtube_quota_usage")["constrained_columns"] == [
        "api_project",
        "quota_date",
        "bucket",
    ]


def test_downgrade_base_and_upgrade_round_trip(db: Database) -> None:
    migrate.upgrade(db)
    migrate.downgrade(db, "base")
    assert tables(db) <= {"alembic_version"}
    assert migrate.current_revision(db) is None
    migrate.upgrade(db, "head")
    assert migrate.current_revision(db) == migrate.head_revision()
    assert tables(db) == EXPECTED_TABLES | {"alembic_version"}
    assert schema_diff(db) == []
    # And once more, to be sure the downgrade is complete after a re-upgrade too.
    migrate.downgrade(db, "base")
    assert tables(db) <= {"alembic_version"}


def test_upgrade_twice_is_idempotent(db: Database) -> None:
    migrate.upgrade(db)
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision()
    assert schema_diff(db) == []
    with db.engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [migrate.head_revision()]


def test_init_db_on_a_manager_is_idempotent(fresh_database: TestDatabase) -> None:
    with ScheduleManager(SchedulerConfig(database_url=fresh_database.url)) as mgr:
        mgr.init_db()
        mgr.init_db()
        assert mgr.list_schedules() == []


# -- two processes racing init_db ------------------------------------------------------------------


def _init_db_worker(url: str, start: Any, results: Any) -> None:
    """Runs in a spawned process: wait for the start signal, then migrate."""
    try:
        start.wait(30)
        with ScheduleManager(SchedulerConfig(database_url=url)) as mgr:
            mgr.init_db()
            mgr.list_schedules()
        results.put(("ok", ""))
    except BaseException as exc:  # report everything to the parent
        results.put((type(exc).__name__, traceback.format_exc()))


@pytest.mark.slow
def test_concurrent_init_db_on_fresh_database(fresh_database: TestDatabase) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_init_db_worker, args=(fresh_database.url, start, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    start.set()
    outcomes = []
    try:
        for _ in procs:
            outcomes.append(results.get(timeout=90))
    except queue.Empty:
        pytest.fail(f"init_db workers did not report: {outcomes}")
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert outcomes == [("ok", "")] * 2, outcomes
    assert all(p.exitcode == 0 for p in procs)
    db = Database(create_engine(fresh_database.url), lock_timeout=5.0)
    try:
        assert migrate.current_revision(db) == migrate.head_revision()
        assert schema_diff(db) == []
    finally:
        db.dispose()


def _columns_before_0006() -> sa.TableClause:
    """``youtube_schedules`` with only the columns it had at 0004/0005 (head has more)."""
    head = Base.metadata.tables["youtube_schedules"]
    added = {
        "video_state",
        "youtube_privacy",
        "youtube_publish_at",
        "video_problem",
        "checked_at",
        "next_check_at",
        "check_count",
    }
    return sa.table(
        "youtube_schedules", *(sa.column(c.name, c.type) for c in head.c if c.name not in added)
    )


def test_0005_clears_the_session_uri_of_completed_uploads_only(db: Database) -> None:
    migrate.upgrade(db, "0004")
    table = _columns_before_0006()
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    rows = [
        ("completed", "https://upload.example/session-done", "vid-1"),
        ("uploading", "https://upload.example/session-live", None),
        ("needs_review", "https://upload.example/session-review", None),
    ]
    with db.engine.begin() as conn:
        for n, (status, uri, video_id) in enumerate(rows):
            conn.execute(
                table.insert().values(
                    channel_id="ch",
                    api_project="p",
                    video_path=f"/videos/{n}.mp4",
                    video_type="final",
                    scheduled_publish_time=at + timedelta(hours=n),
                    publish_date=at.date(),
                    quota_date=at.date(),
                    metadata={"title": f"t{n}"},
                    upload_status=status,
                    attempts=1,
                    bytes_uploaded=0,
                    completed_steps=[],
                    reserved_quota={},
                    consumed_quota={},
                    created_at=at,
                    updated_at=at,
                    upload_session_uri=uri,
                    youtube_video_id=video_id,
                )
            )
    migrate.upgrade(db, "head")
    with db.engine.connect() as conn:
        kept = dict(
            conn.execute(sa.select(table.c.upload_status, table.c.upload_session_uri)).all()
        )
    assert kept == {
        "completed": None,  # a secret of no further use
        "uploading": "https://upload.example/session-live",  # resumes the upload
        "needs_review": "https://upload.example/session-review",  # answers the review
    }
    migrate.downgrade(db, "0004")  # nothing to undo, and it works
    assert migrate.current_revision(db) == "0004"


def test_0006_starts_completed_uploads_as_uploaded_and_due_for_a_check(db: Database) -> None:
    migrate.upgrade(db, "0005")
    table = _columns_before_0006()
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    rows = [("completed", "vid-1"), ("completed", None), ("scheduled", None)]
    with db.engine.begin() as conn:
        for n, (status, video_id) in enumerate(rows):
            conn.execute(
                table.insert().values(
                    channel_id="ch",
                    api_project="p",
                    video_path=f"/videos/{n}.mp4",
                    video_type="final",
                    scheduled_publish_time=at + timedelta(hours=n),
                    publish_date=at.date(),
                    quota_date=at.date(),
                    metadata={"title": f"t{n}"},
                    upload_status=status,
                    attempts=1,
                    bytes_uploaded=0,
                    completed_steps=[],
                    reserved_quota={},
                    consumed_quota={},
                    created_at=at,
                    updated_at=at,
                    youtube_video_id=video_id,
                )
            )
    migrate.upgrade(db, "head")
    head = Base.metadata.tables["youtube_schedules"]
    with db.engine.connect() as conn:
        states = conn.execute(
            sa.select(head.c.video_path, head.c.video_state, head.c.check_count).order_by(head.c.id)
        ).all()
    assert [tuple(r) for r in states] == [
        ("/videos/0.mp4", "uploaded", 0),  # verified by the next processor run
        ("/videos/1.mp4", None, 0),  # no video id: nothing to ask YouTube about
        ("/videos/2.mp4", None, 0),
    ]
    migrate.downgrade(db, "0005")
    assert migrate.current_revision(db) == "0005"
    with db.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("youtube_schedules")}
        tables = set(sa.inspect(conn).get_table_names())
    assert "video_state" not in columns
    assert not {"youtube_schedule_events", "youtube_video_changes"} & tables
