"""The schedule page and ``/api/schedules/{id}`` show the timeline (issue 12, item 6), escaped
and redacted, on every engine."""

from __future__ import annotations

import re

from langflix_scheduler.db import timeline
from langflix_scheduler.db.timeline import TimelineEntry
from tests.web.conftest import Site


def test_api_and_page_show_the_timeline_of_a_web_cancel(site: Site) -> None:
    s = site.booked[0]
    csrf, version = site.form(f"/schedules/{s.id}")
    assert (
        site.post(f"/schedules/{s.id}/cancel", {"csrf": csrf, "version": version}).status_code
        == 303
    )

    api = site.client.get(f"/api/schedules/{s.id}").json()
    assert [(e["kind"], e["actor"]) for e in api["timeline"]] == [
        ("booked", "library"),
        ("cancelled", "web"),
    ]
    assert api["timeline"][0]["at"] == s.created_at.isoformat()
    assert "publish at" in api["timeline"][0]["detail"]
    assert [h["event"] for h in api["history"]] == ["booked", "cancelled"]  # the older shape

    page = site.client.get(f"/schedules/{s.id}").text
    table = re.search(r'<table class="history" id="timeline">(.*?)</table>', page, re.S)
    assert table is not None
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table.group(1)
    )
    assert [(r[1], r[2]) for r in rows] == [("booked", "library"), ("cancelled", "web")]


def test_timeline_details_are_escaped_and_redacted(site: Site) -> None:
    s = site.booked[1]
    entry = TimelineEntry(
        schedule_id=s.id,
        at=site.manager.now(),
        kind="retry",
        actor="<b>w1</b>",
        detail="<script>x</script> at https://x/upload?upload_id=SECRET123",
    )
    with site.manager.database.engine.begin() as conn:
        timeline.append(conn, entry)
    page = site.client.get(f"/schedules/{s.id}").text
    assert "&lt;script&gt;" in page
    assert "<script>x" not in page
    assert "&lt;b&gt;w1&lt;/b&gt;" in page
    assert "SECRET" not in page
    api = site.client.get(f"/api/schedules/{s.id}").json()
    assert "SECRET" not in str(api)
    assert api["timeline"][-1]["kind"] == "retry"
