"""Review: reconcile matches an unrecorded video by its playlist time, which prefers
contentDetails.videoPublishedAt (the moment it went public) over snippet.publishedAt (when it
was added to the uploads playlist, i.e. uploaded)."""

from datetime import UTC, datetime

from langflix_scheduler.db import reconcile as store
from langflix_scheduler.reconcile import _candidates_of
from langflix_scheduler.youtube.video_calls import uploaded_item


def test_video_published_by_publish_at_still_matches_its_uploader() -> None:
    uploaded = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    # As FakeYouTube (and YouTube) list it once publishAt (20:00) turned it public.
    item = uploaded_item(
        {
            "snippet": {
                "publishedAt": "2026-11-23T10:00:00Z",
                "title": "Lesson 1",
                "resourceId": {"videoId": "v1"},
            },
            "contentDetails": {"videoId": "v1", "videoPublishedAt": "2026-11-23T20:00:00Z"},
            "status": {"privacyStatus": "public"},
        }
    )
    assert item is not None
    candidate = store.Candidate(
        schedule_id=7,
        upload_status="needs_review",
        title="Lesson 1",
        attempt_times=(uploaded,),
        lease_expires_at=None,
    )
    assert _candidates_of(item, [candidate]) == (7,), f"matched on {item.published_at}"
