"""Route tests of the dashboard: every page, JSON twin and action, with bad input, on every
engine (``db_url`` is parametrised over SQLite, PostgreSQL and MariaDB/MySQL)."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from langflix_scheduler.domain import UploadStatus, VideoType
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.web import create_app
from tests.integration.db_helpers import RawDB
from tests.integration.test_retry_failed import fail
from tests.web.conftest import SECRET, Site, csrf_of, version_of


def test_pages_show_the_booked_schedules_in_local_time(site: Site) -> None:
    first = site.booked[0]
    page = site.client.get("/calendar?view=week&date=2026-05-04")
    assert page.status_code == 200
    html = page.text
    # Titles are escaped, each schedule sits in its slot at the channel's local time.
    assert "Tom &amp; &#34;Jerry&#34; 0" in html
    assert 'Tom & "Jerry"' not in html
    slot = re.search(
        r'data-at="2026-05-04T01:00:00\+00:00" data-local="10:00">(.*?)</div>', html, re.S
    )
    assert slot is not None
    assert f'data-id="{first.id}"' in slot.group(1)
    assert "st-scheduled" in slot.group(1)
    # Free slots are shown: the week has 7 x 7 configured slots, 4 booked.
    assert html.count('class="slot free"') == 7 * 7 - 4
    month = site.client.get("/calendar?view=month&date=2026-05-04")
    assert month.status_code == 200
    assert month.text.count(f'data-id="{first.id}"') == 1
    api = site.client.get("/api/calendar?view=week&date=2026-05-04").json()
    assert api["timezone"] == "Asia/Seoul"
    assert len(api["days"]) == 7
    monday = api["days"][0]
    assert monday["date"] == "2026-05-04"
    ten = next(s for s in monday["slots"] if s["local"].startswith("2026-05-04T10:00"))
    assert ten["free"] is False
    assert ten["schedules"][0]["id"] == first.id
    assert ten["schedules"][0]["status"] == "scheduled"


def test_quota_attention_runs_schedule_pages_and_json(site: Site, raw_db: RawDB) -> None:
    first = site.booked[0]
    quota = site.client.get("/quota")
    assert quota.status_code == 200
    assert 'data-day="' + first.quota_date.isoformat() in quota.text
    days = site.client.get("/api/quota").json()["days"]
    reserved = sum(d["reserved"] for d in days if d["quota_date"] == first.quota_date.isoformat())
    assert reserved == sum(
        sum(s.reserved_quota.values()) for s in site.booked if s.quota_date == first.quota_date
    )
    assert len({d["quota_date"] for d in days}) == 29  # last 14, today, next 14

    raw_db.execute(
        "UPDATE youtube_schedules SET upload_session_uri = :u, last_error = :e WHERE id = :i",
        u="https://www.googleapis.com/upload/youtube/v3/videos?upload_id=SECRET123",
        e="<script>alert(1)</script> at https://x/upload?upload_id=SECRET123 token=ya29.SECRET",
        i=first.id,
    )
    detail = site.client.get(f"/schedules/{first.id}")
    assert detail.status_code == 200
    assert "&lt;script&gt;" in detail.text
    assert "<script>" not in detail.text
    assert "SECRET" not in detail.text
    assert "booked" in detail.text  # history
    api = site.client.get(f"/api/schedules/{first.id}").json()
    assert api["id"] == first.id
    assert "SECRET" not in str(api)
    assert api["history"][0]["event"] == "booked"

    attention = site.client.get("/attention")
    assert attention.status_code == 200
    assert "Nothing needs a look" in attention.text
    assert site.client.get("/api/attention").json()["clear"] is True
    runs = site.client.get("/runs")
    assert runs.status_code == 200
    assert "No processor run" in runs.text
    assert site.client.get("/api/runs").json() == {"runs": []}


def test_attention_shows_failed_with_error_and_runs_timeline(site: Site, raw_db: RawDB) -> None:
    failed = site.booked[1]
    fail(site.manager, raw_db, failed.id)
    raw_db.execute(
        "INSERT INTO processor_runs (worker_id, started_at, finished_at, outcome, claimed, "
        "uploaded, failed, retried, deferred, rescued, skipped_overlap) VALUES "
        "('w#1', :s, :f, 'skipped', 0, 0, 0, 0, 0, 0, 1)",
        s=site.manager.now() - timedelta(minutes=5),
        f=site.manager.now() - timedelta(minutes=4),
    )
    page = site.client.get("/attention")
    assert "invalidTitle: rejected" in page.text
    assert f"/schedules/{failed.id}" in page.text
    api = site.client.get("/api/attention").json()
    assert [s["id"] for s in api["failed"]] == [failed.id]
    runs = site.client.get("/runs").text
    assert "another exclusive run held the lock" in runs
    assert 'class="run-skipped"' in runs
    assert site.client.get("/api/runs").json()["runs"][0]["outcome"] == "skipped"


def test_attention_shows_a_paused_channel_and_the_command(site: Site) -> None:
    from langflix_scheduler.db import channels as channels_db

    db = site.manager.database
    db.run_core(
        "pause",
        lambda c: channels_db.pause(
            c,
            db.dialect,
            "ch-paused",
            at=site.manager.now(),
            reason="the refresh token was refused (invalid_grant) token=ya29.SECRET",
        ),
    )
    page = site.client.get("/attention").text
    assert "Paused channels" in page
    assert "langflix-scheduler auth --channel ch-paused" in page
    assert "SECRET" not in page
    api = site.client.get("/api/attention").json()
    assert api["clear"] is False
    (paused,) = api["paused_channels"]
    assert paused["channel"] == "ch-paused"
    assert paused["command"] == "langflix-scheduler auth --channel ch-paused"
    assert "SECRET" not in paused["reason"]
    site.manager.resume_channel("ch-paused")
    assert site.client.get("/api/attention").json()["paused_channels"] == []


def test_security_headers_and_no_secret_rendered(site: Site) -> None:
    page = site.client.get("/calendar")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert SECRET not in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()


def test_cancel(site: Site) -> None:
    s = site.booked[0]
    csrf, version = site.form(f"/schedules/{s.id}")
    done = site.post(f"/schedules/{s.id}/cancel", {"csrf": csrf, "version": version})
    assert done.status_code == 303
    assert done.headers["location"] == f"/schedules/{s.id}?done=cancelled"
    assert site.manager.get(s.id).status is UploadStatus.CANCELLED
    assert "Cancelled" in site.client.get(done.headers["location"]).text
    # Cancelling again: a typed error shown on the page, nothing changed.
    again = site.post(f"/schedules/{s.id}/cancel", {"csrf": csrf, "version": version})
    assert again.status_code == 409


def test_reschedule_by_clicking_a_free_slot(site: Site) -> None:
    s = site.booked[0]
    page = site.client.get(f"/calendar?view=week&date=2026-05-04&move={s.id}")
    assert page.status_code == 200
    assert 'id="moving"' in page.text
    target = "2026-05-06T09:00:00+00:00"  # Wednesday 18:00 KST, free
    assert f'name="slot" value="{target}"' in page.text
    moved = site.post(
        f"/schedules/{s.id}/reschedule",
        {"csrf": csrf_of(page.text), "version": version_of(page.text), "slot": target},
    )
    assert moved.status_code == 303, moved.text
    now = site.manager.get(s.id)
    assert now.scheduled_publish_time.isoformat() == target
    # An exact local time (no offset: the channel's zone).
    csrf, version = site.form(f"/schedules/{s.id}")
    exact = site.post(
        f"/schedules/{s.id}/reschedule",
        {"csrf": csrf, "version": version, "new_time": "2026-05-07T12:30"},
    )
    assert exact.status_code == 303
    assert site.manager.get(s.id).scheduled_publish_time.isoformat() == (
        "2026-05-07T03:30:00+00:00"
    )


def test_reschedule_slot_taken_meanwhile(site: Site) -> None:
    s = site.booked[0]
    page = site.client.get(f"/calendar?view=week&date=2026-05-04&move={s.id}")
    target = "2026-05-06T09:00:00+00:00"
    assert f'name="slot" value="{target}"' in page.text
    other = site.manager.schedule_video(
        str(site.video_file()),
        VideoType.FINAL,
        preferred_time=site.manager.now().replace(day=6, hour=9),
    )
    assert other.scheduled_publish_time.isoformat() == target
    taken = site.post(
        f"/schedules/{s.id}/reschedule",
        {"csrf": csrf_of(page.text), "version": version_of(page.text), "slot": target},
    )
    assert taken.status_code == 409
    assert "already booked" in taken.text
    assert site.manager.get(s.id).scheduled_publish_time == s.scheduled_publish_time


def test_retry_failed(site: Site, raw_db: RawDB) -> None:
    s = site.booked[2]
    fail(site.manager, raw_db, s.id)
    page = site.client.get(f"/schedules/{s.id}")
    assert 'id="retry"' in page.text
    done = site.post(
        f"/schedules/{s.id}/retry",
        {"csrf": csrf_of(page.text), "version": version_of(page.text), "new_time": ""},
    )
    assert done.status_code == 303
    assert site.manager.get(s.id).status is UploadStatus.SCHEDULED
    # Retrying a scheduled one: refused with the library's message.
    csrf, version = site.form(f"/schedules/{s.id}")
    refused = site.post(f"/schedules/{s.id}/retry", {"csrf": csrf, "version": version})
    assert refused.status_code == 409
    assert "retry" in refused.text


def test_csrf_missing_or_wrong(site: Site) -> None:
    s = site.booked[0]
    _, version = site.form(f"/schedules/{s.id}")
    for data in ({"version": version}, {"version": version, "csrf": "forged"}):
        refused = site.post(f"/schedules/{s.id}/cancel", data)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    # A token from another browser (another cookie) does not pass either.
    with TestClient(site.client.app) as other:
        other_csrf = csrf_of(other.get(f"/schedules/{s.id}").text)
    refused = site.post(f"/schedules/{s.id}/cancel", {"version": version, "csrf": other_csrf})
    assert refused.status_code == 403
    assert site.manager.get(s.id).status is UploadStatus.SCHEDULED


def test_stale_form(site: Site) -> None:
    s = site.booked[0]
    csrf, version = site.form(f"/schedules/{s.id}")
    site.manager.reschedule(s.id, s.scheduled_publish_time + timedelta(days=2))
    stale = site.post(f"/schedules/{s.id}/cancel", {"csrf": csrf, "version": version})
    assert stale.status_code == 409
    assert "changed since this page was shown" in stale.text
    assert site.manager.get(s.id).status is UploadStatus.SCHEDULED


def test_unknown_id_and_bad_input(site: Site) -> None:
    csrf = csrf_of(site.client.get(f"/schedules/{site.booked[0].id}").text)
    assert site.client.get("/schedules/99999").status_code == 404
    assert site.client.get("/schedules/abc").status_code == 404
    assert site.client.get("/schedules/99999999999999999999").status_code == 404
    assert site.client.get("/api/schedules/0").json()["error"]
    gone = site.post("/schedules/99999/cancel", {"csrf": csrf, "version": "x"})
    assert gone.status_code == 404
    s = site.booked[0]
    _, version = site.form(f"/schedules/{s.id}")
    for bad in ("tomorrow", "2026-13-01T10:00", "x" * 100):
        r = site.post(
            f"/schedules/{s.id}/reschedule", {"csrf": csrf, "version": version, "new_time": bad}
        )
        assert r.status_code == 400, bad
    past = site.post(
        f"/schedules/{s.id}/reschedule",
        {"csrf": csrf, "version": version, "new_time": "2020-01-01T10:00"},
    )
    assert past.status_code == 400
    assert "min_lead_time" in past.text
    assert site.client.get("/calendar?view=year").status_code == 400
    assert site.client.get("/calendar?date=05/04/2026").status_code == 400
    assert site.manager.get(s.id).scheduled_publish_time == s.scheduled_publish_time


def test_read_only_refuses_every_post(web_manager: ScheduleManager, site: Site) -> None:
    s = site.booked[0]
    with TestClient(create_app(web_manager, read_only=True, secret=SECRET)) as ro:
        page = ro.get(f"/schedules/{s.id}")
        assert page.status_code == 200
        assert "/cancel" not in page.text
        assert 'name="slot"' not in ro.get(f"/calendar?move={s.id}").text
        csrf = csrf_of(ro.get("/login").text)
        for action in ("cancel", "reschedule", "retry"):
            r = ro.post(
                f"/schedules/{s.id}/{action}",
                data={"csrf": csrf, "version": "x"},
                follow_redirects=False,
            )
            assert r.status_code == 403
    assert web_manager.get(s.id).status is UploadStatus.SCHEDULED


def test_token_auth(web_manager: ScheduleManager, site: Site) -> None:
    token = "a-long-token-1234"
    with TestClient(create_app(web_manager, token=token, secret=SECRET)) as c:
        assert c.get("/api/calendar").status_code == 401
        assert c.get("/metrics").status_code == 401
        page = c.get("/calendar", headers={"accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")
        bearer = c.get("/api/calendar", headers={"authorization": f"Bearer {token}"})
        assert bearer.status_code == 200
        login = c.get("/login")
        wrong = c.post("/login", data={"csrf": csrf_of(login.text), "token": "nope-nope"})
        assert wrong.status_code == 401
        ok = c.post(
            "/login",
            data={"csrf": csrf_of(login.text), "token": token, "next": "/quota"},
            follow_redirects=False,
        )
        assert ok.status_code == 303
        assert ok.headers["location"] == "/quota"
        assert token not in ok.headers["set-cookie"]
        assert c.get("/quota").status_code == 200
        assert token not in c.get("/quota").text
        # No open redirect after login.
        evil = c.post(
            "/login",
            data={"csrf": csrf_of(login.text), "token": token, "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert evil.headers["location"] == "/calendar"


def test_basic_auth(web_manager: ScheduleManager, site: Site) -> None:
    with TestClient(create_app(web_manager, basic_auth=("ops", "pw-123456"))) as c:
        denied = c.get("/calendar")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        good = base64.b64encode(b"ops:pw-123456").decode()
        bad = base64.b64encode(b"ops:wrong").decode()
        assert c.get("/calendar", headers={"authorization": f"Basic {good}"}).status_code == 200
        assert c.get("/calendar", headers={"authorization": f"Basic {bad}"}).status_code == 401
        assert c.get("/calendar", headers={"authorization": "Basic !!"}).status_code == 401


def test_metrics(site: Site) -> None:
    text = site.client.get("/metrics").text
    assert 'langflix_schedules{channel="default",status="scheduled"} 4.0' in text
    assert "langflix_quota_limit{" in text
    assert "langflix_due_lag_seconds 0.0" in text
    assert "# TYPE langflix_claim_latency_seconds histogram" in text
    assert "# TYPE langflix_booking_latency_seconds histogram" in text


def test_mounted_under_a_prefix(web_manager: ScheduleManager, site: Site) -> None:
    outer = Starlette(routes=[Mount("/scheduler", create_app(web_manager, secret=SECRET))])
    with TestClient(outer) as c:
        page = c.get("/scheduler/calendar")
        assert page.status_code == 200
        assert 'href="/scheduler/quota"' in page.text
        assert 'href="/scheduler/static/style.css"' in page.text
        assert c.get("/scheduler/static/style.css").status_code == 200
        s = site.booked[0]
        detail = c.get(f"/scheduler/schedules/{s.id}")
        done = c.post(
            f"/scheduler/schedules/{s.id}/cancel",
            data={"csrf": csrf_of(detail.text), "version": version_of(detail.text)},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith("/scheduler/schedules/")


@pytest.mark.parametrize("kind", ["week", "month"])
def test_calendar_of_another_channel_is_empty(site: Site, kind: str) -> None:
    page = site.client.get(f"/calendar?view={kind}&channel=other&date=2026-05-04")
    assert page.status_code == 200
    assert "st-scheduled" not in page.text.split("<table", 1)[1]


def test_month_view_summarises_crowded_days(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from langflix_scheduler.web import app as web_app

    monkeypatch.setattr(web_app, "MONTH_CELL_SLOTS", 2)
    page = site.client.get("/calendar?view=month&date=2026-05-04").text
    # Monday 2026-05-04 has 7 configured slots, 3 booked (10:00, 11:00, 18:00): 08:00 and
    # 10:00 listed, the other 5 summarised.
    assert "+5 more slots: 2 scheduled, 3 free" in page
    assert "view=week&amp;date=2026-05-04" in page or "view=week&date=2026-05-04" in page
    week = site.client.get("/calendar?view=week&date=2026-05-04").text
    assert "more slots" not in week


def _on_youtube(raw_db: RawDB, sid: int, video_id: str, **extra: object) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in extra)
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'completed', reserved_quota = '{}', "
        f"youtube_video_id = :v{', ' + sets if sets else ''} WHERE id = :i",
        v=video_id,
        i=sid,
        **extra,
    )


def test_attention_shows_pending_changes_of_plan(site: Site, raw_db: RawDB) -> None:
    from langflix_scheduler.changes import ChangePendingError
    from langflix_scheduler.errors import TransientUploadError
    from langflix_scheduler.testing import MemoryVideoClient

    s = site.booked[0]
    _on_youtube(raw_db, s.id, "vidPending")
    memory = MemoryVideoClient()
    memory.add("vidPending", publish_at=s.scheduled_publish_time)
    memory.fail_next("videos.update", TransientUploadError("reset", reason="reset"))
    with pytest.raises(ChangePendingError):
        site.manager.cancel(s.id, videos=memory, requested_by="<ops> token=ya29.SECRET")
    (change,) = site.manager.pending_video_changes()
    page = site.client.get("/attention").text
    assert "Changes of plan pending on YouTube (1)" in page
    assert f"#{change.id}" in page
    assert f"/schedules/{s.id}" in page
    assert "unpublish: private, no publishAt" in page
    assert "SECRET" not in page
    assert "<ops>" not in page  # escaped
    api = site.client.get("/api/attention").json()
    (shown,) = api["pending_changes"]
    assert (shown["id"], shown["schedule_id"], shown["kind"], shown["state"]) == (
        change.id,
        s.id,
        "unpublish",
        "pending",
    )
    assert shown["what"] == "unpublish: private, no publishAt"
    assert "SECRET" not in (shown["requested_by"] or "")
    assert shown["lease_expires_at"] is not None


def test_attention_shows_a_video_still_processing_after_the_last_check(
    site: Site, raw_db: RawDB
) -> None:
    s, fine = site.booked[0], site.booked[1]
    _on_youtube(
        raw_db,
        s.id,
        "vidStuck",
        video_state="processing",
        video_problem="still processing on YouTube after 48 checks; <look> in YouTube Studio",
    )
    raw_db.execute("UPDATE youtube_schedules SET next_check_at = NULL WHERE id = :i", i=s.id)
    _on_youtube(raw_db, fine.id, "vidBusy", video_state="processing")
    raw_db.execute(
        "UPDATE youtube_schedules SET next_check_at = :t WHERE id = :i",
        t=site.manager.now() + timedelta(minutes=5),
        i=fine.id,
    )
    page = site.client.get("/attention").text
    assert "Still processing on YouTube (no more automatic checks) (1)" in page
    assert "&lt;look&gt; in YouTube Studio" in page
    api = site.client.get("/api/attention").json()
    assert api["clear"] is False
    assert [x["id"] for x in api["processing_stuck"]] == [s.id]
    assert "YouTube Studio" in api["processing_stuck"][0]["why"]
