"""The in-memory VideoClient behaves like the protocol says (it is what fast tests rely on)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from langflix_scheduler.errors import PermanentUploadError, TransientUploadError
from langflix_scheduler.testing import MemoryVideoClient
from langflix_scheduler.youtube.uploader import ApiCallReport
from langflix_scheduler.youtube.videos import VideoClient, is_video_client

AT = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)


def test_it_is_a_video_client_and_reports_every_call_before_it() -> None:
    client = MemoryVideoClient()
    assert is_video_client(client)
    assert isinstance(client, VideoClient)
    reports: list[ApiCallReport] = []
    client.add("v1", publish_at=AT, title="one")
    assert set(client.list_videos(["v1", "gone"], on_call=reports.append)) == {"v1"}
    moved = client.set_publish_at(client.videos["v1"], None, on_call=reports.append)
    assert (moved.privacy_status, moved.publish_at) == ("private", None)
    assert moved.status is not None
    assert "publishAt" not in moved.status
    client.delete_video("v1", on_call=reports.append)
    assert client.list_videos(["v1"]) == {}
    assert [r.operation for r in reports] == ["videos.list", "videos.update", "videos.delete"]
    assert client.operations() == ["videos.list", "videos.update", "videos.delete", "videos.list"]


def test_a_fault_after_the_effect_changes_youtube_and_still_raises() -> None:
    client = MemoryVideoClient()
    client.add("v1", publish_at=AT)
    client.fail_next("videos.delete", TransientUploadError("reset"), after_effect=True)
    with pytest.raises(TransientUploadError):
        client.delete_video("v1")
    assert "v1" not in client.videos  # the answer was lost, the delete happened
    client.add("v2", publish_at=AT)
    client.fail_next("videos.update", TransientUploadError("reset"))
    with pytest.raises(TransientUploadError):
        client.set_publish_at(client.videos["v2"], None)
    assert client.videos["v2"].publish_at == AT  # refused before the effect
    with pytest.raises(PermanentUploadError):
        client.set_publish_at(
            client.videos["v2"].__class__(
                video_id="x", upload_status="processed", privacy_status="private"
            ),
            AT,
        )


def test_uploads_are_paged_fifty_at_a_time_newest_first() -> None:
    client = MemoryVideoClient()
    for n in range(60):
        client.add(f"v{n}")
    first = client.list_uploads()
    assert len(first.items) == 50
    assert first.items[0].video_id == "v59"
    second = client.list_uploads(first.next_page_token)
    assert [i.video_id for i in second.items][-1] == "v0"
    assert second.next_page_token is None
    assert client.operations() == ["channels.list", "playlistItems.list", "playlistItems.list"]
