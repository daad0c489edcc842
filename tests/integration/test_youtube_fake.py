"""FakeYouTube's protocol, validation and quota, spoken to with a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from langflix_scheduler.quota import QuotaPolicy
from langflix_scheduler.testing import FakeYouTube

pytestmark = pytest.mark.timeout(30)

AUTH = {"Authorization": "Bearer t"}
INIT_PATH = "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _call(
    fake: FakeYouTube,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    parsed = urllib.parse.urlsplit(fake.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    all_headers = {**AUTH, **(headers or {})}
    if isinstance(body, dict):
        all_headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=all_headers)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    payload = json.loads(raw) if raw else None
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def _metadata(**status: Any) -> dict[str, Any]:
    return {"snippet": {"title": "t"}, "status": {"privacyStatus": "private", **status}}


def _open(fake: FakeYouTube, size: int, body: dict[str, Any] | None = None) -> str:
    status, headers, _ = _call(
        fake, "POST", INIT_PATH, body or _metadata(), {"X-Upload-Content-Length": str(size)}
    )
    assert status == 200
    return (
        urllib.parse.urlsplit(headers["location"]).path
        + "?"
        + urllib.parse.urlsplit(headers["location"]).query
    )


def test_resumable_protocol_round_trip():
    with FakeYouTube() as fake:
        session = _open(fake, 10)
        status, headers, _ = _call(fake, "PUT", session, b"", {"Content-Range": "bytes */10"})
        assert status == 308
        assert "range" not in headers
        status, headers, _ = _call(
            fake, "PUT", session, b"01234", {"Content-Range": "bytes 0-4/10"}
        )
        assert status == 308
        assert headers["range"] == "bytes=0-4"
        # A re-sent overlapping chunk only contributes its new bytes.
        status, headers, _ = _call(
            fake, "PUT", session, b"34567", {"Content-Range": "bytes 3-7/10"}
        )
        assert status == 308
        assert headers["range"] == "bytes=0-7"
        status, _, resource = _call(fake, "PUT", session, b"89", {"Content-Range": "bytes 8-9/10"})
        assert status == 200
        assert resource["kind"] == "youtube#video"
        video = fake.videos[resource["id"]]
        assert video.size == 10
        # A status query on a finished session returns the resource again.
        status, _, again = _call(fake, "PUT", session, b"", {"Content-Range": "bytes */10"})
        assert status == 200
        assert again["id"] == resource["id"]
        assert fake.status_queries == 2
        assert fake.bytes_received == 12
        assert fake.sessions[next(iter(fake.sessions))].video_id == resource["id"]


def test_unknown_and_expired_sessions_are_404():
    with FakeYouTube() as fake:
        status, _, body = _call(
            fake,
            "PUT",
            "/upload/youtube/v3/videos?uploadType=resumable&upload_id=nope",
            b"",
            {"Content-Range": "bytes */10"},
        )
        assert status == 404
        assert body["error"]["code"] == 404
        session = _open(fake, 10)
        fake.expire_sessions()
        status, _, _ = _call(fake, "PUT", session, b"", {"Content-Range": "bytes */10"})
        assert status == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"snippet": {}, "status": {"privacyStatus": "private"}}, "invalidTitle"),
        ({"snippet": {"title": "x" * 101}}, "invalidTitle"),
        ({"snippet": {"title": "a <b>"}}, "invalidTitle"),
        ({"snippet": {"title": "t", "description": "é" * 2501}}, "invalidDescription"),
        ({"snippet": {"title": "t", "tags": ["x" * 501]}}, "invalidTags"),
        ({"snippet": {"title": "t", "categoryId": "3"}}, "invalidCategoryId"),
        (_metadata(publishAt="soon"), "invalidPublishAt"),
        (
            {
                "snippet": {"title": "t"},
                "status": {"privacyStatus": "public", "publishAt": "2030-01-01T00:00:00Z"},
            },
            "invalidPublishAt",
        ),
    ],
)
def test_metadata_validation_uses_youtube_error_shape(body: dict[str, Any], reason: str):
    with FakeYouTube() as fake:
        status, _, answer = _call(fake, "POST", INIT_PATH, body)
    assert status == 400
    error = answer["error"]
    assert error["code"] == 400
    assert error["errors"][0]["reason"] == reason
    assert error["errors"][0]["domain"] == "youtube.video"
    assert error["message"] == error["errors"][0]["message"]


def test_past_publish_at_publishes_at_once_and_missing_privacy_means_public():
    clock = Clock(datetime(2026, 11, 23, 12, tzinfo=UTC))
    with FakeYouTube(clock=clock) as fake:
        status, _, video = _call(
            fake,
            "POST",
            "/upload/youtube/v3/videos?uploadType=multipart&part=snippet,status",
            b"",
        )
        assert status == 400  # not multipart
        for body in (_metadata(publishAt="2026-11-23T11:00:00Z"), {"snippet": {"title": "t"}}):
            session = _open(fake, 1, body)
            status, _, video = _call(fake, "PUT", session, b"x", {"Content-Range": "bytes 0-0/1"})
            assert status == 200
            assert video["status"]["privacyStatus"] == "public"
            assert "publishAt" not in video["status"]
    assert [v.published_immediately for v in fake.videos.values()] == [True, False]


def test_auth_is_required_and_required_token_enforced():
    with FakeYouTube(required_token="good") as fake:
        status, _, body = _call(fake, "GET", "/youtube/v3/videos?part=id&id=x")
        assert status == 401
        assert body["error"]["errors"][0]["reason"] == "authError"
        status, _, _ = _call(
            fake, "GET", "/youtube/v3/videos?part=id&id=x", headers={"Authorization": "Bearer good"}
        )
        assert status == 200


def test_quota_is_counted_per_pacific_day_and_bucket():
    # 2026-11-24 07:59 UTC is 23:59 on 2026-11-23 in Los Angeles.
    clock = Clock(datetime(2026, 11, 24, 7, 59, tzinfo=UTC))
    with FakeYouTube(clock=clock, insert_limit=1, shared_limit=2) as fake:
        _open(fake, 5)
        status, _, body = _call(fake, "POST", INIT_PATH, _metadata())
        assert status == 429
        assert "Video Uploads per day" in body["error"]["message"]
        assert body["error"]["errors"][0]["reason"] == "rateLimitExceeded"
        assert _call(fake, "GET", "/youtube/v3/videos?part=id&id=x")[0] == 200
        assert _call(fake, "GET", "/youtube/v3/videos?part=id&id=x")[0] == 200
        status, _, body = _call(fake, "GET", "/youtube/v3/videos?part=id&id=x")
        assert status == 403
        assert body["error"]["errors"][0]["reason"] == "quotaExceeded"
        day = clock.now.date() - timedelta(days=1)
        assert fake.quota_used("uploads", day) == 1
        assert fake.quota_used("shared", day) == 2
        clock.now += timedelta(minutes=2)  # midnight PT: fresh buckets
        assert fake.quota_used("uploads") == 0
        _open(fake, 5)
        assert fake.insert_calls == 3


def test_legacy_policy_charges_inserts_to_the_shared_pool():
    with FakeYouTube(quota_policy=QuotaPolicy.preset("legacy")) as fake:
        for _ in range(6):
            _open(fake, 5)
        assert fake.quota_used("shared") == 9600
        status, _, body = _call(fake, "POST", INIT_PATH, _metadata())
        assert status == 403
        assert body["error"]["errors"][0]["reason"] == "quotaExceeded"


def test_thumbnail_multipart_and_simple_and_list():
    with FakeYouTube() as fake:
        session = _open(fake, 1)
        _, _, video = _call(fake, "PUT", session, b"x", {"Content-Range": "bytes 0-0/1"})
        vid = video["id"]
        status, _, _ = _call(
            fake,
            "POST",
            f"/upload/youtube/v3/thumbnails/set?videoId={vid}&uploadType=media",
            b"\xff\xd8png",
            {"Content-Type": "image/png"},
        )
        assert status == 200
        boundary = "===b==="
        multipart = (
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\nContent-Type: image/jpeg\r\n\r\nJPEGDATA\r\n--{boundary}--"
        ).encode()
        status, _, _ = _call(
            fake,
            "POST",
            f"/upload/youtube/v3/thumbnails/set?videoId={vid}&uploadType=multipart",
            multipart,
            {"Content-Type": f'multipart/related; boundary="{boundary}"'},
        )
        assert status == 200
        assert fake.videos[vid].thumbnail_count == 2
        status, _, body = _call(
            fake,
            "POST",
            "/upload/youtube/v3/thumbnails/set?videoId=missing&uploadType=media",
            b"x",
            {"Content-Type": "image/png"},
        )
        assert status == 404
        assert body["error"]["errors"][0]["reason"] == "videoNotFound"
        status, _, listing = _call(fake, "GET", f"/youtube/v3/videos?part=snippet&id={vid},zz")
        assert status == 200
        assert [i["id"] for i in listing["items"]] == [vid]
        assert fake.quota_used("shared") == 50 * 3 + 1


def test_fault_injection_targets_and_latency():
    with FakeYouTube() as fake:
        fake.fail_next(1, 502, target="list")
        fake.latency = 0.01
        assert _call(fake, "POST", INIT_PATH, _metadata())[0] == 200  # not a "list" request
        assert _call(fake, "GET", "/youtube/v3/videos?part=id&id=x")[0] == 502
        assert _call(fake, "GET", "/youtube/v3/videos?part=id&id=x")[0] == 200
        with pytest.raises(ValueError, match="target"):
            fake.fail_next(1, target="everything")
        with pytest.raises(ValueError, match="error_rate"):
            fake.error_rate = 2.0


def test_channels_list_mine_answers_the_configured_channel_and_costs_one_unit():
    with FakeYouTube(channel_id="UCabcdefghijklmnopqrstuv", channel_title="Lessons") as fake:
        status, _, payload = _call(fake, "GET", "/youtube/v3/channels?part=id,snippet&mine=true")
        assert status == 200
        assert payload["kind"] == "youtube#channelListResponse"
        (item,) = payload["items"]
        assert item["id"] == "UCabcdefghijklmnopqrstuv"
        assert item["snippet"]["title"] == "Lessons"
        status, _, payload = _call(fake, "GET", "/youtube/v3/channels?part=id&mine=true")
        assert "snippet" not in payload["items"][0]
        status, _, payload = _call(fake, "GET", "/youtube/v3/channels?part=id")
        assert status == 400
        assert payload["error"]["errors"][0]["reason"] == "missingRequiredParameter"
        fake.set_channel(None)
        status, _, payload = _call(fake, "GET", "/youtube/v3/channels?part=id&mine=true")
        assert status == 200
        assert payload["items"] == []
        assert fake.charged() == {"channels.list": 4}


def _token_request(fake: FakeYouTube, form: dict[str, str]) -> tuple[int, Any]:
    body = urllib.parse.urlencode(form).encode()
    status, _, payload = _call(
        fake,
        "POST",
        "/token",
        body,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status, payload


def test_token_endpoint_grants_scopes_and_testing_refresh_tokens_expire():
    clock = Clock(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    upload = "https://www.googleapis.com/auth/youtube.upload"
    with FakeYouTube(clock=clock, app_status="testing", granted_scopes=[upload]) as fake:
        form = {"grant_type": "refresh_token", "refresh_token": "r1", "scope": upload}
        status, payload = _token_request(fake, form)
        assert status == 200
        assert payload["scope"] == upload
        assert payload["refresh_token_expires_in"] == 7 * 24 * 3600
        # Asking for more than was granted is refused, as Google does.
        wider = {**form, "scope": upload + " https://www.googleapis.com/auth/youtube"}
        assert _token_request(fake, wider)[1]["error"] == "invalid_scope"
        # A token the fake issued with only the upload scope may not read the channel.
        status, _, answer = _call(
            fake,
            "GET",
            "/youtube/v3/channels?part=id&mine=true",
            headers={"Authorization": f"Bearer {payload['access_token']}"},
        )
        assert status == 403
        assert answer["error"]["errors"][0]["reason"] == "insufficientPermissions"
        clock.now += timedelta(days=7)
        status, payload = _token_request(fake, form)
        assert status == 400
        assert payload["error"] == "invalid_grant"
        fake.app_status = "production"
        status, payload = _token_request(fake, form)
        assert status == 200
        assert "refresh_token_expires_in" not in payload
