"""FakeYouTube's model of a video's life after upload, observed through the real google client:
processing on the fake's clock, failures and rejections by rule, a locked-private project,
``publishAt`` passing, ``videos.update`` replacing whole parts, the uploads playlist, the test's
hands on the channel, and refresh tokens that expire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import Privacy, VideoMetadata
from langflix_scheduler.errors import AuthorizationError, PermanentUploadError
from langflix_scheduler.testing.fake_youtube import OPERATIONS, STATUS_MUTABLE

from ._video_world import World, make_world
from ._video_world import world as world  # noqa: PLC0414 - the fixture

pytestmark = pytest.mark.timeout(60)

HOUR = timedelta(hours=1)
PROCESSING = timedelta(minutes=10)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[World]:
    """Processing takes :data:`PROCESSING` on the fake's clock."""
    yield from make_world(tmp_path, processing_time=PROCESSING)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[World]:
    """A locked-private project."""
    yield from make_world(tmp_path, locked_private=True)


def _video(w: World, video_id: str):  # type: ignore[no-untyped-def]
    return w.client.list_videos([video_id])[video_id]


# -- processing ------------------------------------------------------------------------------


def test_processing_takes_time_on_the_fakes_clock(slow: World) -> None:
    video_id = slow.upload()
    first = _video(slow, video_id)
    assert (first.upload_status, first.processing_status) == ("uploaded", "processing")
    slow.clock.advance(PROCESSING - timedelta(seconds=1))
    assert _video(slow, video_id).upload_status == "uploaded"
    slow.clock.advance(timedelta(seconds=1))
    done = _video(slow, video_id)
    assert (done.upload_status, done.processing_status) == ("processed", "succeeded")
    assert (done.failure_reason, done.processing_failure_reason) == (None, None)


def test_processing_of_the_next_upload_fails(slow: World) -> None:
    slow.fake.fail_processing(reason="codec")
    failed = slow.upload("First")
    fine = slow.upload("Second")
    slow.clock.advance(PROCESSING)
    video = _video(slow, failed)
    assert (video.upload_status, video.failure_reason) == ("failed", "codec")
    assert video.processing_status == "failed"
    assert video.processing_failure_reason == "transcodeFailed"
    assert _video(slow, fine).upload_status == "processed"


def test_uploads_with_a_title_are_rejected_every_time(world: World) -> None:
    world.fake.reject_uploads(title="Copied", reason="copyright")
    rejected = [world.upload("Copied"), world.upload("Copied")]
    fine = world.upload("Original")
    for video_id in rejected:
        video = _video(world, video_id)
        assert (video.upload_status, video.failure_reason) == ("rejected", "copyright")
        assert video.processing_status == "terminated"
        assert video.status is not None
        assert video.status["rejectionReason"] == "copyright"
    assert _video(world, fine).upload_status == "processed"


def test_a_rule_for_n_uploads_is_used_up(world: World) -> None:
    world.fake.reject_uploads(n=2)
    ids = [world.upload(f"V{n}") for n in range(3)]
    found = world.client.list_videos(ids)
    assert [found[i].upload_status for i in ids] == ["rejected", "rejected", "processed"]


def test_rules_need_a_positive_count(world: World) -> None:
    with pytest.raises(ValueError, match="n must be"):
        world.fake.fail_processing(n=0)
    with pytest.raises(ValueError, match="processing_time"):
        world.fake.processing_time = -HOUR


# -- publishAt, locked-private -----------------------------------------------------------------


def test_publish_at_turns_the_video_public_when_the_clock_passes_it(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + HOUR)
    assert _video(world, video_id).privacy_status == "private"
    world.clock.advance(HOUR - timedelta(seconds=1))
    assert _video(world, video_id).privacy_status == "private"
    world.clock.advance(timedelta(seconds=1))
    video = _video(world, video_id)
    assert (video.privacy_status, video.publish_at) == ("public", None)
    assert world.fake.videos[video_id].published_at == world.clock.now


def test_a_video_still_processing_at_publish_at_goes_public_when_processing_ends(
    slow: World,
) -> None:
    video_id = slow.upload(publish_at=slow.clock.now + timedelta(minutes=5))
    slow.clock.advance(timedelta(minutes=6))
    assert _video(slow, video_id).privacy_status == "private"
    slow.clock.advance(PROCESSING)
    assert _video(slow, video_id).privacy_status == "public"


def test_a_failed_video_never_goes_public(world: World) -> None:
    world.fake.fail_processing()
    video_id = world.upload(publish_at=world.clock.now + HOUR)
    world.clock.advance(2 * HOUR)
    assert _video(world, video_id).privacy_status == "private"


def test_a_locked_private_project_keeps_uploads_private_without_publish_at(
    locked: World,
) -> None:
    scheduled = locked.upload("Scheduled", publish_at=locked.clock.now + HOUR)
    public = locked.upload("Public now")
    for video_id in (scheduled, public):
        video = _video(locked, video_id)
        assert (video.privacy_status, video.publish_at) == ("private", None)
    locked.clock.advance(2 * HOUR)
    assert _video(locked, scheduled).privacy_status == "private"
    # Scheduling it again does not help either.
    answer = locked.client.set_publish_at(_video(locked, scheduled), locked.clock.now + HOUR)
    assert (answer.privacy_status, answer.publish_at) == ("private", None)
    assert locked.fake.videos[public].request_body["status"]["privacyStatus"] == "public"


def test_locked_private_can_be_switched_on_later(world: World) -> None:
    before = world.upload("Before", publish_at=world.clock.now + HOUR)
    world.fake.locked_private = True
    after = world.upload("After", publish_at=world.clock.now + HOUR)
    assert _video(world, before).publish_at is not None
    assert _video(world, after).publish_at is None


def test_publish_at_cannot_be_set_on_a_video_published_before(world: World) -> None:
    video_id = world.upload()  # public at once
    video = _video(world, video_id)
    with pytest.raises(PermanentUploadError) as caught:
        world.client.set_publish_at(video, world.clock.now + HOUR)
    assert caught.value.reason == "invalidPublishAt"


def test_a_past_publish_at_in_an_update_publishes_at_once(world: World) -> None:
    video_id = world.upload(publish_at=world.clock.now + HOUR)
    service, _ = world.client._client()
    status = {**_video(world, video_id).status, "publishAt": "2020-01-01T00:00:00Z"}  # type: ignore[dict-item]
    service.videos().update(part="status", body={"id": video_id, "status": status}).execute()
    assert _video(world, video_id).privacy_status == "public"


# -- videos.update replaces the whole part -----------------------------------------------------


def test_a_status_update_records_what_it_reset(world: World) -> None:
    video_id = world.upload(privacy=Privacy.UNLISTED)
    world.fake.set_video_status(video_id, embeddable=False, license="creativeCommon")
    service, _ = world.client._client()
    body = {"id": video_id, "status": {"privacyStatus": "unlisted", "license": "creativeCommon"}}
    service.videos().update(part="status", body=body).execute()
    (update,) = world.fake.video_updates
    assert set(update.reset) == set(STATUS_MUTABLE) - {"privacyStatus", "license"}
    status = world.fake.videos[video_id].status
    assert (status["embeddable"], status["license"]) == (True, "creativeCommon")
    assert status["uploadStatus"] == "processed"  # read-only properties survive


def test_a_snippet_update_resets_what_it_leaves_out(world: World) -> None:
    video_id = world.upload()
    world.client.update_metadata(
        video_id, VideoMetadata(title="T", tags=("a",), default_language="ko")
    )
    service, _ = world.client._client()
    body = {"id": video_id, "snippet": {"title": "Only a title", "categoryId": "27"}}
    service.videos().update(part="snippet", body=body).execute()
    update = world.fake.video_updates[-1]
    assert set(update.reset) == {"description", "tags", "defaultLanguage", "defaultAudioLanguage"}
    snippet = world.fake.videos[video_id].snippet
    assert snippet["title"] == "Only a title"
    assert "tags" not in snippet
    assert "defaultLanguage" not in snippet
    assert snippet["channelId"] == world.fake.channel[0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("snippet", "reason"),
    [
        ({"categoryId": "27"}, "invalidTitle"),
        ({"title": "T"}, "invalidCategoryId"),
        ({"title": "T", "categoryId": "27", "description": "<b>"}, "invalidDescription"),
    ],
)
def test_a_snippet_update_is_validated(world: World, snippet: dict[str, str], reason: str) -> None:
    video_id = world.upload("Kept")
    service, _ = world.client._client()
    request = service.videos().update(part="snippet", body={"id": video_id, "snippet": snippet})
    with pytest.raises(Exception) as caught:  # noqa: PT011 - an HttpError, classified below
        request.execute()
    assert world.client._classify(caught.value).reason == reason
    assert world.fake.videos[video_id].snippet["title"] == "Kept"
    assert world.fake.charged()["videos.update"] == 50  # charged even when invalid


# -- the channel ------------------------------------------------------------------------------


def test_the_uploads_playlist_holds_every_video_newest_first(world: World) -> None:
    ours = world.upload("Ours")
    world.clock.advance(HOUR)
    unknown = world.fake.add_channel_video("Made in Studio", privacy_status="unlisted")
    world.clock.advance(HOUR)
    gone = world.upload("Gone")
    world.fake.remove_video(gone)
    page = world.client.list_uploads()
    assert [(i.video_id, i.title) for i in page.items] == [
        (unknown.id, "Made in Studio"),
        (ours, "Ours"),
    ]
    assert page.items[0].privacy_status == "unlisted"
    assert world.fake.videos[unknown.id].added_by_test
    assert world.fake.uploads_playlist_id == "UU" + world.fake.channel[0][2:]  # type: ignore[index]


def test_a_video_deleted_behind_the_librarys_back_is_gone_everywhere(world: World) -> None:
    video_id = world.upload()
    world.fake.remove_video(video_id)
    assert world.client.list_videos([video_id]) == {}
    assert world.client.list_uploads().items == []
    assert video_id in world.fake.deleted_videos
    assert world.fake.calls_of("videos.delete") == 0
    with pytest.raises(KeyError):
        world.fake.remove_video(video_id)


def test_a_channel_video_can_carry_its_own_status(world: World) -> None:
    video = world.fake.add_channel_video(
        "Scheduled elsewhere",
        privacy_status="private",
        publish_at=world.clock.now + HOUR,
        status={"embeddable": False},
    )
    remote = _video(world, video.id)
    assert remote.publish_at == world.clock.now + HOUR
    assert remote.status is not None
    assert remote.status["embeddable"] is False
    world.clock.advance(HOUR)
    assert _video(world, video.id).privacy_status == "public"


def test_requests_are_recorded_with_their_operation(world: World) -> None:
    video_id = world.upload()
    world.client.list_videos([video_id])
    world.client.delete_video(video_id)
    world.client.list_uploads()
    operations = [r.operation for r in world.fake.requests]
    assert operations == [
        "videos.insert",
        None,  # the media
        "videos.list",
        "videos.delete",
        "channels.list",
        "playlistItems.list",
    ]
    assert set(OPERATIONS.values()) >= {"videos.update", "videos.delete"}
    assert world.fake.charged() == {
        "channels.list": 1,
        "playlistItems.list": 1,
        "videos.delete": 50,
        "videos.insert": 1,
        "videos.list": 1,
    }


# -- refresh tokens ------------------------------------------------------------------------------


@pytest.fixture
def testing_app(tmp_path: Path) -> Iterator[World]:
    """An OAuth app in "Testing" whose refresh tokens live two days."""
    yield from make_world(tmp_path, app_status="testing", refresh_token_lifetime=timedelta(days=2))


def _list_with_a_fresh_refresh(w: World, video_id: str) -> set[str]:
    """``videos.list`` by a new client that must refresh its access token first."""
    credentials = Credentials(
        token=None,
        refresh_token="refresh-1",
        token_uri=w.fake.token_uri,
        client_id="id",
        client_secret="secret",
    )
    with w.uploader(credentials=credentials) as client:
        return set(client.list_videos([video_id]))


def test_refresh_tokens_expire_after_the_configured_lifetime(testing_app: World) -> None:
    w = testing_app
    video = w.fake.add_channel_video()
    assert _list_with_a_fresh_refresh(w, video.id) == {video.id}
    w.clock.advance(timedelta(days=2) - timedelta(seconds=1))
    assert _list_with_a_fresh_refresh(w, video.id) == {video.id}
    w.clock.advance(timedelta(seconds=1))
    with pytest.raises(AuthorizationError) as caught:
        _list_with_a_fresh_refresh(w, video.id)
    assert caught.value.reason == "invalid_grant"
    assert w.fake.calls_of("videos.list") == 2  # the refused one never reached the API
