"""The after-upload calls of the real client (``YouTubeUploader`` as a ``VideoClient``) against
FakeYouTube: what each sends, that ``on_call`` hears each call before it is sent, that writes
are never re-sent blindly, and how failures are classified."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from googleapiclient.errors import HttpError

from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.errors import (
    InvalidScheduleError,
    PermanentUploadError,
    QuotaExhaustedError,
    TransientUploadError,
)
from langflix_scheduler.youtube.uploader import PUBLISH_AT_MIN_LEAD, ApiCallReport, CallPhase
from langflix_scheduler.youtube.videos import RemoteVideo, is_video_client

from ._video_world import Calls, World
from ._video_world import world as world  # noqa: PLC0414 - the fixture

pytestmark = pytest.mark.timeout(60)

HOUR = timedelta(hours=1)


def _current(w: World, video_id: str) -> RemoteVideo:
    return w.client.list_videos([video_id])[video_id]


# -- videos.list -------------------------------------------------------------------------------


def test_the_uploader_is_a_video_client(world: World) -> None:
    assert is_video_client(world.client)


def test_list_videos_reads_each_returned_video_in_one_call(world: World) -> None:
    scheduled = world.upload("Scheduled", publish_at=world.clock.now + 2 * HOUR)
    public = world.fake.add_channel_video("Elsewhere", privacy_status="public")
    gone = world.fake.add_channel_video("Gone")
    world.fake.remove_video(gone.id)
    calls = Calls(world.fake)

    found = world.client.list_videos([scheduled, public.id, gone.id, "unknown"], on_call=calls)

    assert set(found) == {scheduled, public.id}
    video = found[scheduled]
    assert video.publish_at == world.clock.now + 2 * HOUR
    assert video.publish_at.tzinfo is UTC
    assert (video.privacy_status, video.upload_status) == ("private", "processed")
    assert (video.processing_status, video.title) == ("succeeded", "Scheduled")
    assert video.status is not None
    assert video.status["embeddable"] is True
    assert found[public.id].publish_at is None
    assert calls.log() == [("videos.list", "sending")]
    assert calls.seen_by_fake == [0]  # reported before the fake received it
    (request,) = [r for r in world.fake.requests if r.operation == "videos.list"]
    assert request.query["part"] == "status,processingDetails,snippet"
    assert request.query["maxResults"] == "50"
    assert request.query["id"].split(",") == [scheduled, public.id, gone.id, "unknown"]
    assert world.fake.charged() == {"videos.insert": 1, "videos.list": 1}


@pytest.mark.parametrize("count", [0, 51])
def test_list_videos_takes_one_to_fifty_ids_and_sends_nothing_otherwise(
    world: World, count: int
) -> None:
    calls = Calls(world.fake)
    with pytest.raises(ValueError, match="1 to 50"):
        world.client.list_videos([f"v{i}" for i in range(count)], on_call=calls)
    assert calls.reports == []
    assert world.fake.calls_of("videos.list") == 0


def test_a_failed_read_is_retried_and_each_try_reported(world: World) -> None:
    video = world.fake.add_channel_video()
    world.fake.fail_next(2, 503, target="list")
    calls = Calls(world.fake)
    found = world.client.list_videos([video.id], on_call=calls)
    assert set(found) == {video.id}
    assert calls.log() == [("videos.list", "sending")] * 3
    assert world.fake.calls_of("videos.list") == 3
    assert len(world.sleeps) == 2


def test_a_lost_read_answer_is_asked_again(world: World) -> None:
    video = world.fake.add_channel_video()
    world.fake.drop_reply_next(target="list")
    calls = Calls(world.fake)
    assert set(world.client.list_videos([video.id], on_call=calls)) == {video.id}
    assert calls.log() == [("videos.list", "sending")] * 2
    assert world.fake.calls_of("videos.list") == 2  # charged twice, reported twice
    assert world.fake.charged() == {"videos.list": 2}


# -- videos.update part=status ---------------------------------------------------------------


def test_set_publish_at_sends_the_whole_status_part_back(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    # Changed in Studio since the upload: a partial status part would reset these.
    world.fake.set_video_status(
        video_id, embeddable=False, license="creativeCommon", publicStatsViewable=False
    )
    current = _current(world, video_id)
    calls = Calls(world.fake)
    new_time = world.clock.now + 5 * HOUR

    answer = world.client.set_publish_at(current, new_time, on_call=calls)

    assert calls.log() == [("videos.update", "sending")]
    assert calls.seen_by_fake == [0]
    (update,) = world.fake.video_updates
    assert (update.video_id, update.part, update.reset) == (video_id, "status", ())
    assert update.sent["publishAt"] == "2026-11-23T17:00:00Z"
    assert update.sent["privacyStatus"] == "private"
    status = world.fake.videos[video_id].status
    assert status["embeddable"] is False
    assert status["license"] == "creativeCommon"
    assert status["publicStatsViewable"] is False
    assert status["publishAt"] == "2026-11-23T17:00:00Z"
    assert (answer.video_id, answer.publish_at, answer.privacy_status) == (
        video_id,
        new_time,
        "private",
    )
    assert answer.status is not None
    assert answer.status["embeddable"] is False
    (request,) = [r for r in world.fake.requests if r.operation == "videos.update"]
    assert request.method == "PUT"
    assert request.query["part"] == "status"
    assert world.fake.charged()["videos.update"] == 50


def test_a_partial_status_part_would_reset_what_it_leaves_out(world: World) -> None:
    """The fake notices a client that does not send the whole part (so the test above can
    fail): what YouTube does to such a request."""
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    world.fake.set_video_status(video_id, embeddable=False)
    service, _ = world.client._client()
    body = {"id": video_id, "status": {"privacyStatus": "private"}}
    service.videos().update(part="status", body=body).execute()
    (update,) = world.fake.video_updates
    assert "embeddable" in update.reset
    status = world.fake.videos[video_id].status
    assert status["embeddable"] is True
    assert "publishAt" not in status


def test_set_publish_at_none_unpublishes_keeping_the_video_private(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    answer = world.client.set_publish_at(_current(world, video_id), None)
    assert (answer.privacy_status, answer.publish_at) == ("private", None)
    assert "publishAt" not in world.fake.video_updates[-1].sent
    world.clock.advance(3 * HOUR)
    assert world.fake.videos[video_id].status["privacyStatus"] == "private"


@pytest.mark.parametrize(
    "when",
    [
        PUBLISH_AT_MIN_LEAD - timedelta(seconds=1),
        timedelta(0),
        -HOUR,
    ],
)
def test_a_publish_time_not_safely_ahead_is_refused_before_sending(
    world: World, when: timedelta
) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    current = _current(world, video_id)
    calls = Calls(world.fake)
    with pytest.raises(InvalidScheduleError, match="publish_at"):
        world.client.set_publish_at(current, world.clock.now + when, on_call=calls)
    assert calls.reports == []
    assert world.fake.calls_of("videos.update") == 0


def test_a_naive_publish_time_is_refused(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    with pytest.raises(InvalidScheduleError, match="timezone-aware"):
        world.client.set_publish_at(_current(world, video_id), datetime(2030, 1, 1))  # noqa: DTZ001 - naive on purpose
    assert world.fake.calls_of("videos.update") == 0


def test_set_publish_at_exactly_the_minimum_lead_ahead_is_sent(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    when = world.clock.now + PUBLISH_AT_MIN_LEAD
    assert world.client.set_publish_at(_current(world, video_id), when).publish_at == when


def test_a_lost_write_answer_is_not_sent_again(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    current = _current(world, video_id)
    world.fake.drop_reply_next(target="update")
    calls = Calls(world.fake)
    with pytest.raises(TransientUploadError) as caught:
        world.client.set_publish_at(current, world.clock.now + 5 * HOUR, on_call=calls)
    assert calls.log() == [("videos.update", "sending")]
    assert world.fake.calls_of("videos.update") == 1
    assert caught.value.__cause__ is not None
    # It took effect: the caller's recovery finds that out with videos.list.
    assert _current(world, video_id).publish_at == world.clock.now + 5 * HOUR
    assert world.sleeps == []


def test_a_failed_write_is_not_retried(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    current = _current(world, video_id)
    world.fake.fail_next(1, 503, target="update")
    with pytest.raises(TransientUploadError) as caught:
        world.client.set_publish_at(current, world.clock.now + 5 * HOUR)
    assert isinstance(caught.value.__cause__, HttpError)
    assert world.fake.calls_of("videos.update") == 1
    assert _current(world, video_id).publish_at == world.clock.now + 2 * HOUR


@pytest.mark.parametrize("target", ["update", "list", "delete"])
def test_a_quota_refusal_is_quota_exhausted_and_reported_refused(world: World, target: str) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    current = _current(world, video_id)
    operation = {"update": "videos.update", "list": "videos.list", "delete": "videos.delete"}
    before = world.fake.calls_of(operation[target])
    world.fake.quota_exceeded_next(target=target)
    calls = Calls(world.fake)
    call = {
        "update": lambda: world.client.set_publish_at(
            current, world.clock.now + 5 * HOUR, on_call=calls
        ),
        "list": lambda: world.client.list_videos([video_id], on_call=calls),
        "delete": lambda: world.client.delete_video(video_id, on_call=calls),
    }[target]
    with pytest.raises(QuotaExhaustedError) as caught:
        call()
    assert calls.log() == [(operation[target], "sending"), (operation[target], "refused")]
    assert caught.value.reason == "quotaExceeded"
    assert caught.value.resume_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # PT midnight
    assert isinstance(caught.value.__cause__, HttpError)
    assert world.fake.calls_of(operation[target]) == before + 1  # not retried


def test_an_update_of_a_deleted_video_is_a_permanent_not_found(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    current = _current(world, video_id)
    world.fake.remove_video(video_id)
    with pytest.raises(PermanentUploadError) as caught:
        world.client.set_publish_at(current, world.clock.now + 5 * HOUR)
    assert (caught.value.status, caught.value.reason) == (404, "videoNotFound")
    assert isinstance(caught.value.__cause__, HttpError)


def test_an_on_call_that_raises_stops_the_request_and_propagates(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + 2 * HOUR)
    current = _current(world, video_id)

    class Refused(Exception):
        pass

    def on_call(report: ApiCallReport) -> None:
        raise Refused(report.operation)

    with pytest.raises(Refused, match=r"videos\.update"):
        world.client.set_publish_at(current, world.clock.now + 5 * HOUR, on_call=on_call)
    with pytest.raises(Refused, match=r"videos\.delete"):
        world.client.delete_video(video_id, on_call=on_call)
    with pytest.raises(Refused, match=r"videos\.list"):
        world.client.list_videos([video_id], on_call=on_call)
    assert world.fake.calls_of("videos.update") == 0
    assert world.fake.calls_of("videos.delete") == 0
    assert world.fake.calls_of("videos.list") == 1  # the one _current made
    assert video_id in world.fake.videos


# -- videos.delete ---------------------------------------------------------------------------


def test_delete_video_deletes_and_a_video_already_gone_counts_as_done(world: World) -> None:
    video_id = world.upload()
    calls = Calls(world.fake)
    world.client.delete_video(video_id, on_call=calls)
    assert video_id not in world.fake.videos
    assert video_id in world.fake.deleted_videos
    world.client.delete_video(video_id, on_call=calls)  # 404 videoNotFound: done
    assert calls.log() == [("videos.delete", "sending")] * 2
    assert calls.seen_by_fake == [0, 1]
    assert [r.status for r in world.fake.requests if r.operation == "videos.delete"] == [204, 404]
    assert world.fake.charged()["videos.delete"] == 100


def test_a_lost_delete_answer_is_not_sent_again(world: World) -> None:
    video_id = world.upload()
    world.fake.drop_reply_next(target="delete")
    with pytest.raises(TransientUploadError):
        world.client.delete_video(video_id)
    assert world.fake.calls_of("videos.delete") == 1
    assert video_id in world.fake.deleted_videos


def test_delete_refused_for_another_reason_is_raised(world: World) -> None:
    video_id = world.upload()
    world.fake.fail_next(1, 403, target="delete")
    with pytest.raises(PermanentUploadError) as caught:
        world.client.delete_video(video_id)
    assert caught.value.status == 403
    assert video_id in world.fake.videos


# -- videos.update part=snippet, thumbnails.set ----------------------------------------------


def test_update_metadata_sends_the_whole_snippet(world: World) -> None:
    video_id = world.upload("Old title")
    calls = Calls(world.fake)
    metadata = VideoMetadata(
        title="New title",
        description="New description",
        tags=("korean", "lesson two"),
        category_id="27",
        default_language="ko",
    )
    world.client.update_metadata(video_id, metadata, on_call=calls)
    assert calls.log() == [("videos.update", "sending")]
    (update,) = world.fake.video_updates
    assert (update.part, update.reset) == ("snippet", ())
    snippet = world.fake.videos[video_id].snippet
    assert snippet["title"] == "New title"
    assert snippet["description"] == "New description"
    assert snippet["tags"] == ["korean", "lesson two"]
    assert (snippet["categoryId"], snippet["defaultLanguage"]) == ("27", "ko")
    (request,) = [r for r in world.fake.requests if r.operation == "videos.update"]
    assert request.query["part"] == "snippet"


def test_update_metadata_clears_tags_and_description_left_empty(world: World) -> None:
    video_id = world.upload("Old")
    world.client.update_metadata(video_id, VideoMetadata(title="T", tags=("a",), description="d"))
    world.client.update_metadata(video_id, VideoMetadata(title="T"))
    snippet = world.fake.videos[video_id].snippet
    assert snippet["tags"] == []
    assert snippet["description"] == ""


def test_update_metadata_with_a_thumbnail_sets_it_after_the_snippet(
    world: World, tmp_path: Path
) -> None:
    video_id = world.upload()
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(b"\xff\xd8\xff\xe0" + b"x" * 2000)
    calls = Calls(world.fake)
    world.client.update_metadata(
        video_id, VideoMetadata(title="T", thumbnail_path=str(thumb)), on_call=calls
    )
    assert calls.log() == [("videos.update", "sending"), ("thumbnails.set", "sending")]
    assert world.fake.videos[video_id].thumbnail_count == 1
    assert world.fake.charged()["thumbnails.set"] == 50


def test_update_metadata_with_a_missing_thumbnail_sends_nothing(
    world: World, tmp_path: Path
) -> None:
    video_id = world.upload()
    metadata = VideoMetadata(title="T", thumbnail_path=str(tmp_path / "missing.jpg"))
    with pytest.raises(PermanentUploadError):
        world.client.update_metadata(video_id, metadata)
    assert world.fake.calls_of("videos.update") == 0


def test_update_metadata_of_an_unknown_video_is_not_found(world: World) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        world.client.update_metadata("nope", VideoMetadata(title="T"))
    assert caught.value.reason == "videoNotFound"
    assert isinstance(caught.value.__cause__, HttpError)


# -- the uploads playlist --------------------------------------------------------------------


def test_list_uploads_pages_newest_first_and_finds_the_playlist_once(world: World) -> None:
    ids = []
    for n in range(55):
        world.clock.advance(timedelta(minutes=1))
        ids.append(world.fake.add_channel_video(f"Video {n}", privacy_status="private").id)
    calls = Calls(world.fake)

    first = world.client.list_uploads(on_call=calls)
    assert first.next_page_token is not None
    second = world.client.list_uploads(first.next_page_token, on_call=calls)
    again = world.client.list_uploads(on_call=calls)

    assert [i.video_id for i in first.items] == ids[::-1][:50]
    assert [i.video_id for i in second.items] == ids[::-1][50:]
    assert second.next_page_token is None
    assert first.items[0].title == "Video 54"
    assert first.items[0].published_at == world.clock.now
    assert first.items[0].privacy_status == "private"
    assert [i.video_id for i in again.items] == [i.video_id for i in first.items]
    assert calls.log() == [
        ("channels.list", "sending"),
        ("playlistItems.list", "sending"),
        ("playlistItems.list", "sending"),
        ("playlistItems.list", "sending"),
    ]
    pages = [r.query for r in world.fake.requests if r.operation == "playlistItems.list"]
    assert {p["playlistId"] for p in pages} == {world.fake.uploads_playlist_id}
    assert {p["maxResults"] for p in pages} == {"50"}
    assert {p["part"] for p in pages} == {"snippet,contentDetails,status"}
    channel_query = next(r.query for r in world.fake.requests if r.operation == "channels.list")
    assert (channel_query["part"], channel_query["mine"]) == ("contentDetails", "true")


def test_list_uploads_without_a_channel_is_permanent(world: World) -> None:
    world.fake.set_channel(None)
    with pytest.raises(PermanentUploadError) as caught:
        world.client.list_uploads()
    assert caught.value.reason == "channelNotFound"
    assert world.fake.calls_of("playlistItems.list") == 0


def test_list_uploads_retries_a_failed_page(world: World) -> None:
    world.fake.add_channel_video()
    world.fake.fail_next(1, 500, target="playlistList")
    world.fake.fail_next(1, 503, target="channels")
    assert len(world.client.list_uploads().items) == 1
    assert world.fake.calls_of("channels.list") == 2
    assert world.fake.calls_of("playlistItems.list") == 2


# -- threads ---------------------------------------------------------------------------------


def test_each_thread_reports_to_its_own_on_call(world: World) -> None:
    videos = [world.fake.add_channel_video(f"V{n}").id for n in range(2)]
    seen: dict[int, list[str]] = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def work(n: int) -> None:
        def on_call(report: ApiCallReport) -> None:
            assert report.phase is CallPhase.SENDING
            seen[n].append(report.operation)

        barrier.wait()
        for _ in range(5):
            world.client.list_videos([videos[n]], on_call=on_call)
        world.client.delete_video(videos[n], on_call=on_call)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert seen == {n: ["videos.list"] * 5 + ["videos.delete"] for n in range(2)}
    assert world.fake.calls_of("videos.list") == 10
