"""The chaos run: 4 upload processor processes, 100 uploads, random SIGKILLs, a faulty YouTube.

The test process schedules 100 due uploads (10 channels, 300-700 kB files, so 2-3 chunks of
256 KiB each) and runs a :class:`~langflix_scheduler.testing.FakeYouTube` that answers 10 % of
chunk PUTs with 503 and drops the connection mid-chunk on about 5 % more. Four processor
processes (the real ``YouTubeUploader``, the real clock, a 3-second lease) drain the queue while
the test SIGKILLs a random one every second or two and starts a replacement, six times. Checked
afterwards, against the fake's own records and the tables:

* every schedule was uploaded exactly once: one video per schedule on the fake, with the file's
  exact bytes (size and SHA-256), and that video's id on the schedule row;
* every schedule ends ``completed``, none is stuck ``uploading`` (leases of killed processors
  were rescued by the survivors), no lease is left behind;
* the counters still equal a recount (plain SQL, ``RawDB.check_invariants``);
* the quota ledger counts every call the fake charged, per quota day and bucket, and at most one
  call more per SIGKILL (a process killed between recording a call and sending it); ``used``
  equals the ledger.

A processor bug found here must be reported, never marked xfail.

Sizes: ``LANGFLIX_STRESS_UPLOADS`` (100), ``LANGFLIX_STRESS_PROCESSORS`` (4),
``LANGFLIX_STRESS_KILLS`` (6), ``LANGFLIX_STRESS_ERROR_PCT`` (10), ``LANGFLIX_STRESS_DROP_PCT`` (5).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.quota import QuotaPolicy
from langflix_scheduler.testing import FakeYouTube
from tests.integration.db_helpers import RawDB
from tests.stress import _workers
from tests.stress._pool import context, env_int

pytestmark = pytest.mark.stress

UPLOADS = env_int("UPLOADS", 100)
PROCESSORS = env_int("PROCESSORS", 4)
KILLS = env_int("KILLS", 6)
ERROR_PCT = env_int("ERROR_PCT", 10)
DROP_PCT = env_int("DROP_PCT", 5)
CHANNELS = 10
LEASE_S = 3.0
THREADS = 2
MAX_ATTEMPTS = 50
DEADLINE_S = 150.0
LATENCY_S = 0.01  # per request: uploads last long enough to be killed in flight
BIG = 1_000_000
POLICY = QuotaPolicy(
    name="chaos",
    buckets={"uploads": 100_000, "shared": BIG},
    costs={"videos.insert": ("uploads", 1)},
)


def make_uploads(url: str, directory: Path) -> dict[str, tuple[Path, str]]:
    """Schedule ``UPLOADS`` due uploads; title -> (file, sha256)."""
    rng = random.Random(7)
    config = SchedulerConfig(
        database_url=url,
        daily_limits={"final": BIG, "short": BIG},
        quota_policy=POLICY,
        min_lead_time=timedelta(0),
    )
    files: dict[str, tuple[Path, str]] = {}
    now = datetime.now(UTC).replace(microsecond=0)
    with ScheduleManager(config) as mgr:
        for i in range(UPLOADS):
            title = f"chaos-{i:04d}"
            path = directory / f"{title}.mp4"
            data = rng.randbytes(rng.randrange(300_000, 700_000))
            path.write_bytes(data)
            files[title] = (path, hashlib.sha256(data).hexdigest())
            # Due at once: the publish time is within the upload lead time (one hour).
            mgr.schedule_video(
                path,
                "short",
                preferred_time=now + timedelta(minutes=20, seconds=i),
                metadata={"title": title, "privacy": "private"},
                channel=f"c{i % CHANNELS}",
            )
    return files


@contextlib.contextmanager
def processors(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Start/kill/replace processor processes; every one is gone when the block ends."""
    ctx = context()
    state: dict[str, Any] = {"procs": [], "started": 0}

    def start() -> Any:
        state["started"] += 1
        name = f"chaos-{state['started']}"
        proc = ctx.Process(  # type: ignore[attr-defined]
            target=_workers.chaos_processor_main,
            # Odd-numbered processors stream each file in one request, even ones send chunks.
            args=(
                {
                    **spec,
                    "worker_id": name,
                    "chunk_size": None if state["started"] % 2 else _workers.CHUNK,
                },
            ),
            name=name,
            daemon=True,
        )
        proc.start()
        state["procs"].append(proc)
        return proc

    state["start"] = start
    try:
        yield state
    finally:
        Path(spec["stop_file"]).touch()
        deadline = time.monotonic() + 20.0
        for proc in state["procs"]:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
        for proc in state["procs"]:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5.0)


def in_flight(raw: RawDB, worker_id: str) -> int:
    """Schedules leased (``uploading``) by ``worker_id`` right now."""
    return int(
        raw.scalar(
            "SELECT COUNT(*) FROM youtube_schedules"
            " WHERE upload_status = 'uploading' AND lease_owner LIKE :owner",
            owner=f"{worker_id}#%",
        )
    )


def pending(raw: RawDB) -> dict[str, int]:
    with raw.connect() as conn:
        rows = conn.execute(
            text("SELECT upload_status, COUNT(*) FROM youtube_schedules GROUP BY upload_status")
        ).all()
    return {status: n for status, n in rows}


def test_chaos(db_url: str, engine_name: str, raw_db: RawDB, tmp_path: Path) -> None:
    files = make_uploads(db_url, tmp_path)
    rng = random.Random(11)
    started = time.monotonic()
    kills = 0
    kills_mid_upload = 0
    drops = 0
    with FakeYouTube(
        error_rate=ERROR_PCT / 100,
        latency=LATENCY_S,
        seed=3,
        insert_limit=100_000,
        shared_limit=BIG,
    ) as fake:
        spec = {
            "db_url": db_url,
            "endpoint": fake.api_endpoint,
            "stop_file": str(tmp_path / "stop"),
            "threads": THREADS,
            "lease": LEASE_S,
            "max_attempts": MAX_ATTEMPTS,
        }
        with processors(spec) as procs:
            for _ in range(PROCESSORS):
                procs["start"]()
            next_kill = time.monotonic() + rng.uniform(0.3, 1.2)
            while True:
                counts = pending(raw_db)
                if counts.get("completed", 0) + counts.get("failed", 0) == UPLOADS:
                    break
                assert time.monotonic() - started < DEADLINE_S, f"not drained: {counts}"
                # Dropped connections: keep about DROP_PCT % of chunk PUTs cut mid-body.
                if drops < fake.chunks_received * DROP_PCT / 100:
                    fake.drop_next_chunk(1)
                    drops += 1
                if kills < KILLS and time.monotonic() >= next_kill:
                    live = [p for p in procs["procs"] if p.is_alive()]
                    victim = rng.choice(live)
                    busy = in_flight(raw_db, victim.name)
                    os.kill(victim.pid, signal.SIGKILL)
                    victim.join(timeout=10.0)
                    assert victim.exitcode == -signal.SIGKILL
                    kills += 1
                    kills_mid_upload += busy > 0
                    procs["start"]()
                    next_kill = time.monotonic() + rng.uniform(0.3, 1.2)
                time.sleep(0.05)
        elapsed = time.monotonic() - started
        rescued = int(raw_db.scalar("SELECT COALESCE(SUM(rescued), 0) FROM processor_runs"))
        videos = fake.videos
        insert_calls = fake.insert_calls
        chunks = fake.chunks_received
        charged = fake.charged_by_bucket()

    # Exactly once, by the fake's records: one video per schedule, with the file's bytes.
    by_title = Counter(v.snippet["title"] for v in videos.values())
    assert {t: n for t, n in by_title.items() if n != 1} == {}
    assert set(by_title) == set(files)
    for video in videos.values():
        path, digest = files[video.snippet["title"]]
        assert (video.size, video.sha256) == (path.stat().st_size, digest), video.id

    # Every schedule completed with that video's id; nothing stuck uploading, no lease left.
    with raw_db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT video_path, upload_status, youtube_video_id, lease_owner, attempts"
                " FROM youtube_schedules"
            )
        ).all()
    video_of = {v.snippet["title"]: v.id for v in videos.values()}
    assert len(rows) == UPLOADS
    for path_str, status, video_id, lease_owner, _attempts in rows:
        title = Path(path_str).stem
        assert status == "completed", (title, status)
        assert video_id == video_of[title], title
        assert lease_owner is None, title
    raw_db.check_invariants(
        daily_limits={"final": BIG, "short": BIG}, bucket_limits=dict(POLICY.buckets)
    )

    # The ledger counts what the fake charged (every initiation of every attempt, killed ones
    # included), at most one call more per kill, never less; used == the ledger.
    with raw_db.connect() as conn:
        ledger = {
            (str(r[0])[:10], r[1]): int(r[2])
            for r in conn.execute(
                text(
                    "SELECT quota_date, bucket, SUM(cost) FROM youtube_api_calls"
                    " GROUP BY quota_date, bucket"
                )
            ).all()
        }
        used = {
            (str(r[0])[:10], r[1]): int(r[2])
            for r in conn.execute(
                text("SELECT quota_date, bucket, used FROM youtube_quota_usage WHERE used > 0")
            ).all()
        }
    fake_charged = {(d.isoformat(), b): n for (d, b), n in charged.items()}
    for key, units in fake_charged.items():
        assert ledger.get(key, 0) >= units, (key, ledger, fake_charged)
    over = sum(ledger.values()) - sum(fake_charged.values())
    assert 0 <= over <= kills, (ledger, fake_charged, kills)
    assert {k: v for k, v in ledger.items() if v} == used
    print(
        f"chaos {engine_name}: quota ledger {sorted(ledger.items())} vs fake charged "
        f"{sorted(fake_charged.items())} (over by {over}, {kills} kills)"
    )
    print(
        f"chaos {engine_name}: {UPLOADS} uploads, {PROCESSORS} processors, {kills} SIGKILLs "
        f"({kills_mid_upload} with uploads in flight, {rescued} leases rescued), "
        f"{drops} dropped chunks, {ERROR_PCT}% 503s, {insert_calls} sessions opened, "
        f"{chunks} chunk PUTs, retried attempts {sum(r[4] for r in rows)}, {elapsed:.1f} s"
    )
