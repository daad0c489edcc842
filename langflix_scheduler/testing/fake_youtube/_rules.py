"""YouTube's rules and state in the fake: videos, metadata validation, quota, follow-ups,
the OAuth token endpoint."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ...quota import quota_date_of
from ._errors import UPLOADS_BUCKET, _ApiError, _invalid, _quota_error
from ._http import Answer, HttpPlumbing, _Handler

#: Title, description and tags limits enforced like YouTube.
TITLE_MAX_CHARS = 100


DESCRIPTION_MAX_BYTES = 5000


TAGS_MAX_CHARS = 500


THUMBNAIL_MAX_BYTES = 50 * 1024 * 1024


#: YouTube's assignable video category ids.
VALID_CATEGORY_IDS = frozenset({"1", "2", "10", "15", "17", *(str(i) for i in range(18, 45))})


_PRIVACY = frozenset({"public", "unlisted", "private"})


_COSTS = {
    "videos.insert",
    "thumbnails.set",
    "playlistItems.insert",
    "playlistItems.list",
    "videos.list",
    "channels.list",
    "videos.update",
    "videos.delete",
}

#: How long a refresh token of an app in "Testing" status lives (Google: 7 days).
TESTING_REFRESH_TOKEN_LIFETIME = timedelta(days=7)
#: The OAuth app's publishing status: ``production`` refresh tokens do not expire by time.
APP_STATUSES = frozenset({"production", "testing"})
#: Scopes granted when a refresh asks for none and none were configured.
DEFAULT_GRANTED_SCOPES = (
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.force-ssl",
)
#: Scopes that let ``channels.list(mine=true)`` read the channel.
_READ_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/youtube",
        "https://www.googleapis.com/auth/youtube.force-ssl",
        "https://www.googleapis.com/auth/youtube.readonly",
        "https://www.googleapis.com/auth/youtubepartner",
    }
)


@dataclass(frozen=True, kw_only=True)
class FakeVideo:
    """A video the fake accepted.

    Attributes:
        id: the video id.
        snippet: the snippet as stored (what ``videos.list`` returns).
        status: the status as stored (``publishAt`` removed when it was in the past).
        request_body: the metadata exactly as the client sent it.
        size: bytes received for the video.
        sha256: hex digest of the bytes received.
        content: the bytes, when the fake was created with ``keep_media=True``.
        upload_type: ``"resumable"`` or ``"multipart"``.
        published_immediately: a ``publishAt`` in the past was sent (YouTube publishes at once).
        thumbnail_set: ``thumbnails.set`` succeeded for it.
        thumbnail_sha256: hex digest of the last thumbnail.
        thumbnail_count: how many times a thumbnail was set.
        playlist_ids: playlists it was added to, in order (duplicates kept).
        created_at: when the upload completed (fake clock).
        processing_done_at: when processing ends (fake clock): until then ``uploadStatus`` is
            ``uploaded`` and ``processingDetails.processingStatus`` ``processing``.
        processing_outcome: what processing ends in: ``succeeded`` (``processed``),
            ``failed`` (``uploadStatus=failed`` + ``failureReason``) or ``rejected``
            (``uploadStatus=rejected`` + ``rejectionReason``).
        processing_reason: the failure or rejection reason.
        published_at: when the video became public (fake clock), None while it never was.
        added_by_test: put on the channel by :meth:`FakeYouTube.add_channel_video`, not uploaded
            through the API.
    """

    id: str
    snippet: Mapping[str, Any]
    status: Mapping[str, Any]
    request_body: Mapping[str, Any]
    size: int
    sha256: str
    content: bytes | None = None
    upload_type: str = "resumable"
    published_immediately: bool = False
    thumbnail_set: bool = False
    thumbnail_sha256: str | None = None
    thumbnail_count: int = 0
    playlist_ids: tuple[str, ...] = ()
    created_at: datetime
    processing_done_at: datetime | None = None
    processing_outcome: str = "succeeded"
    processing_reason: str | None = None
    published_at: datetime | None = None
    added_by_test: bool = False

    @property
    def processing_details(self) -> dict[str, Any]:
        """``processingDetails`` as ``videos.list`` reports it, from ``status.uploadStatus``."""
        upload_status = self.status.get("uploadStatus")
        if upload_status == "uploaded":
            return {"processingStatus": "processing"}
        if upload_status == "failed":
            return {
                "processingStatus": "failed",
                "processingFailureReason": "transcodeFailed",
            }
        if upload_status == "rejected":
            return {"processingStatus": "terminated"}
        return {"processingStatus": "succeeded"}

    def resource(self, parts: frozenset[str] | None = None) -> dict[str, Any]:
        """The ``youtube#video`` resource the API returns: ``parts`` of it when given, else
        ``snippet`` and ``status`` (what an insert answers)."""
        every: dict[str, Any] = {
            "snippet": dict(self.snippet),
            "status": dict(self.status),
            "processingDetails": self.processing_details,
        }
        wanted = parts if parts is not None else frozenset({"snippet", "status"})
        resource: dict[str, Any] = {
            "kind": "youtube#video",
            "etag": self.sha256[:27],
            "id": self.id,
        }
        resource.update({k: v for k, v in every.items() if k in wanted})
        return resource


def _parse_rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


class YouTubeRules(HttpPlumbing):
    """Videos, validation, quota and the follow-up methods (state set by ``FakeYouTube``)."""

    _limits: dict[str, int]
    _costs: dict[str, tuple[str, int]]
    _clock: Callable[[], datetime]
    _quota_timezone: str
    _keep_media: bool
    _known_playlists: frozenset[str] | None
    _charged: dict[tuple[date, str], int]
    _videos: dict[str, FakeVideo]
    _usage: dict[tuple[date, str], int]
    _insert_calls: int
    _next_video: int
    _tokens_issued: int
    _refresh_revoked: bool
    _channel: tuple[str, str] | None
    _app_status: str
    _granted_scopes: frozenset[str] | None
    _refresh_first_seen: dict[str, datetime]
    _refresh_token_lifetime: timedelta
    _access_scopes: dict[str, frozenset[str]]

    def revoke_refresh_tokens(self) -> None:
        """Make the token endpoint answer ``invalid_grant`` to refresh requests."""
        with self._lock:
            self._refresh_revoked = True

    def set_channel(self, channel_id: str | None, title: str = "") -> None:
        """The channel ``channels.list(mine=true)`` answers with (``None``: the account has no
        channel, an empty list)."""
        with self._lock:
            self._channel = None if channel_id is None else (channel_id, title)

    @property
    def channel(self) -> tuple[str, str] | None:
        """``(channel id, title)`` of the authorised channel, or None."""
        with self._lock:
            return self._channel

    @property
    def app_status(self) -> str:
        """``"production"`` or ``"testing"`` (refresh tokens expire after 7 days)."""
        with self._lock:
            return self._app_status

    @app_status.setter
    def app_status(self, value: str) -> None:
        if value not in APP_STATUSES:
            raise ValueError(f"app_status must be one of {sorted(APP_STATUSES)}")
        with self._lock:
            self._app_status = value

    def exhaust_quota(self, bucket: str = UPLOADS_BUCKET, day: date | None = None) -> None:
        """Mark ``bucket`` as spent for ``day`` (default: the current quota day)."""
        with self._lock:
            key = (day or self._quota_day(), bucket)
            self._usage[key] = self._limits[bucket]

    @property
    def videos(self) -> dict[str, FakeVideo]:
        """A snapshot: video id -> :class:`FakeVideo`."""
        with self._lock:
            return dict(self._videos)

    @property
    def insert_calls(self) -> int:
        """``videos.insert`` calls received (session initiations and multipart uploads)."""
        with self._lock:
            return self._insert_calls

    def quota_used(self, bucket: str, day: date | None = None) -> int:
        """Units of ``bucket`` charged on ``day`` (default: the current quota day)."""
        with self._lock:
            return self._usage.get((day or self._quota_day(), bucket), 0)

    def charged(self, day: date | None = None) -> dict[str, int]:
        """Units charged per API method on quota ``day`` (default: every day summed): every
        request YouTube would charge, including initiations whose session was never used and
        requests whose answer was dropped; not injected faults or quota refusals."""
        with self._lock:
            out: dict[str, int] = {}
            for (d, operation), units in self._charged.items():
                if day is None or d == day:
                    out[operation] = out.get(operation, 0) + units
            return dict(sorted(out.items()))

    def charged_by_bucket(self) -> dict[tuple[date, str], int]:
        """Units charged per (quota day, bucket), like :meth:`quota_used` but without the
        usage set by :meth:`exhaust_quota`."""
        with self._lock:
            out: dict[tuple[date, str], int] = {}
            for (d, operation), units in self._charged.items():
                key = (d, self._costs[operation][0])
                out[key] = out.get(key, 0) + units
            return dict(sorted(out.items()))

    def _quota_day(self) -> date:
        return quota_date_of(self._clock(), self._quota_timezone)

    def _charge(self, operation: str) -> None:
        priced = self._costs.get(operation)
        if priced is None:
            return  # the policy does not price it: uncounted, as the library leaves it
        bucket, amount = priced
        with self._lock:
            key = (self._quota_day(), bucket)
            used = self._usage.get(key, 0)
            if used + amount > self._limits[bucket]:
                raise _quota_error(bucket)
            self._usage[key] = used + amount
            charged_key = (key[0], operation)
            self._charged[charged_key] = self._charged.get(charged_key, 0) + amount

    def _validate_video(self, params: Mapping[str, str], body: bytes) -> dict[str, Any]:
        if not params.get("part"):
            raise _ApiError(400, "required", "Required parameter: part")
        try:
            resource = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            raise _ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(resource, dict):
            raise _ApiError(400, "parseError", "Parse Error")
        snippet = resource.get("snippet") or {}
        status = resource.get("status") or {}
        title = snippet.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _invalid("invalidTitle", "The request metadata does not specify a video title.")
        if len(title) > TITLE_MAX_CHARS or "<" in title or ">" in title:
            raise _invalid("invalidTitle", "The request metadata specifies an invalid video title.")
        description = snippet.get("description", "")
        if (
            not isinstance(description, str)
            or len(description.encode("utf-8")) > DESCRIPTION_MAX_BYTES
            or "<" in description
            or ">" in description
        ):
            raise _invalid(
                "invalidDescription", "The request metadata specifies an invalid video description."
            )
        tags = snippet.get("tags", [])
        if not isinstance(tags, list) or sum(len(str(t)) for t in tags) > TAGS_MAX_CHARS:
            raise _invalid("invalidTags", "The request metadata specifies invalid video keywords.")
        category = snippet.get("categoryId")
        if category is not None and str(category) not in VALID_CATEGORY_IDS:
            raise _invalid(
                "invalidCategoryId",
                "The snippet.categoryId property specifies an invalid category ID.",
            )
        privacy = status.get("privacyStatus")
        if privacy is not None and privacy not in _PRIVACY:
            raise _invalid(
                "invalidVideoMetadata", "The request metadata specifies an invalid privacy status."
            )
        if "publishAt" in status:
            if _parse_rfc3339(status["publishAt"]) is None:
                raise _invalid(
                    "invalidPublishAt", "The request metadata specifies an invalid publishAt time."
                )
            if privacy != "private":
                raise _invalid(
                    "invalidPublishAt",
                    "publishAt can only be set when the video's privacy status is private.",
                )
        return resource

    def _multipart_insert(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        parts = self._multipart(h, body)
        if len(parts) != 2:
            raise _ApiError(400, "badContent", "multipart body needs metadata and media parts")
        resource = self._validate_video(params, parts[0][1])
        media = parts[1][1]
        if not media:
            raise _invalid("mediaBodyRequired", "The request does not include the video content.")
        video = self._finish_video(resource, bytes(media), upload_type="multipart")
        return 200, video.resource(), {}

    @staticmethod
    def _multipart(h: _Handler, body: bytes) -> list[tuple[str, bytes]]:
        content_type = h.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/"):
            raise _ApiError(400, "badContent", "expected a multipart/related body")
        raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts: list[tuple[str, bytes]] = []
        for part in message.iter_parts():
            payload = part.get_payload(decode=True)
            parts.append((part.get_content_type(), payload if isinstance(payload, bytes) else b""))
        return parts

    def _finish_video(
        self, resource: Mapping[str, Any], data: bytes, *, upload_type: str
    ) -> FakeVideo:
        now = self._clock()
        snippet = dict(resource.get("snippet") or {})
        snippet.setdefault("description", "")
        snippet.setdefault("categoryId", "22")
        snippet["publishedAt"] = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        channel = self._channel
        snippet["channelId"] = channel[0] if channel else "UCfakeChannel000000000000"
        status = dict(resource.get("status") or {})
        # Since 2026-11-02 a missing privacyStatus means public.
        status.setdefault("privacyStatus", "public")
        published_immediately = False
        publish_at = _parse_rfc3339(status.get("publishAt"))
        if publish_at is not None and publish_at <= now:
            published_immediately = True
            status.pop("publishAt")
            status["privacyStatus"] = "public"
        status["uploadStatus"] = "uploaded"
        with self._lock:
            self._next_video += 1
            video_id = f"v{self._next_video:010d}"
            video = FakeVideo(
                id=video_id,
                snippet=snippet,
                status=status,
                request_body=json.loads(json.dumps(resource)),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content=data if self._keep_media else None,
                upload_type=upload_type,
                published_immediately=published_immediately,
                created_at=now,
            )
            self._videos[video_id] = video
        return video

    def _update_video(self, video_id: str, **changes: Any) -> FakeVideo:
        with self._lock:
            video = self._videos.get(video_id)
            if video is None:
                raise _ApiError(
                    404,
                    "videoNotFound",
                    "The video identified by the videoId parameter could not be found.",
                    domain="youtube.thumbnail",
                )
            if "playlist_id" in changes:
                changes["playlist_ids"] = (*video.playlist_ids, changes.pop("playlist_id"))
            if "thumbnail_sha256" in changes:
                changes["thumbnail_count"] = video.thumbnail_count + 1
            video = replace(video, **changes)
            self._videos[video_id] = video
            return video

    def _thumbnail(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        self._charge("thumbnails.set")
        upload_type = params.get("uploadType", "media")
        if upload_type == "multipart":
            parts = self._multipart(h, body)
            content_type, image = parts[-1] if parts else ("", b"")
        elif upload_type == "media":
            content_type, image = h.headers.get("Content-Type", ""), body
        else:
            raise _ApiError(400, "badRequest", f"uploadType {upload_type!r} is not supported")
        if not image:
            raise _invalid("mediaBodyRequired", "The request does not include the image content.")
        if len(image) > THUMBNAIL_MAX_BYTES:
            raise _invalid("mediaBodyTooLarge", "The thumbnail image is larger than 50 MB.")
        if content_type.split(";")[0].strip() not in (
            "image/jpeg",
            "image/png",
            "application/octet-stream",
        ):
            raise _invalid("invalidImage", "The provided image content is invalid.")
        video_id = params.get("videoId", "")
        self._update_video(
            video_id, thumbnail_set=True, thumbnail_sha256=hashlib.sha256(image).hexdigest()
        )
        url = f"https://i.ytimg.com/vi/{video_id}/default.jpg"
        payload = {
            "kind": "youtube#thumbnailSetResponse",
            "items": [{"default": {"url": url, "width": 120, "height": 90}}],
        }
        return 200, payload, {}

    def _playlist_item(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        self._charge("playlistItems.insert")
        try:
            resource = json.loads(body.decode("utf-8"))
            snippet = resource["snippet"]
            playlist_id = str(snippet["playlistId"])
            video_id = str(snippet["resourceId"]["videoId"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise _ApiError(
                400, "playlistIdRequired", "The request does not specify a playlist and video."
            ) from None
        if self._known_playlists is not None and playlist_id not in self._known_playlists:
            raise _ApiError(
                404,
                "playlistNotFound",
                "The playlist identified with the request's playlistId parameter cannot be found.",
                domain="youtube.playlistItem",
            )
        video = self._update_video(video_id, playlist_id=playlist_id)
        payload = {
            "kind": "youtube#playlistItem",
            "id": f"{playlist_id}.{video_id}.{len(video.playlist_ids)}",
            "snippet": {
                "playlistId": playlist_id,
                "position": len(video.playlist_ids) - 1,
                "resourceId": {"kind": "youtube#video", "videoId": video_id},
            },
        }
        return 200, payload, {}

    def _playlist_list(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        """``playlistItems.list(part=id, playlistId=..., videoId=...)``: that video's items in
        that playlist (duplicates included)."""
        self._charge("playlistItems.list")
        playlist_id = params.get("playlistId", "")
        if not playlist_id:
            raise _ApiError(400, "playlistIdRequired", "The request does not specify a playlist.")
        if self._known_playlists is not None and playlist_id not in self._known_playlists:
            raise _ApiError(
                404,
                "playlistNotFound",
                "The playlist identified with the request's playlistId parameter cannot be found.",
                domain="youtube.playlistItem",
            )
        wanted = params.get("videoId")
        with self._lock:
            videos = [v for v in self._videos.values() if wanted is None or v.id == wanted]
            items = [
                {"kind": "youtube#playlistItem", "id": f"{playlist_id}.{v.id}.{n + 1}"}
                for v in videos
                for n, p in enumerate(v.playlist_ids)
                if p == playlist_id
            ]
        payload = {
            "kind": "youtube#playlistItemListResponse",
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }
        return 200, payload, {}

    def _list(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        self._charge("videos.list")
        ids = [i for i in params.get("id", "").split(",") if i]
        with self._lock:
            items = [self._videos[i].resource() for i in ids if i in self._videos]
        payload = {
            "kind": "youtube#videoListResponse",
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }
        return 200, payload, {}

    def _channels(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        """``channels.list(part=..., mine=true)``: the authorised channel (1 unit). A token the
        fake issued without a YouTube read scope gets 403 ``insufficientPermissions``."""
        if "channels.list" in self._costs:
            self._charge("channels.list")
        parts = {p.strip() for p in params.get("part", "").split(",") if p.strip()}
        if not parts:
            raise _ApiError(400, "required", "Required parameter: part")
        if params.get("mine") != "true" and not params.get("id"):
            raise _ApiError(
                400,
                "missingRequiredParameter",
                "No filter selected. Expected one of: mine, id, forUsername, managedByMe, ...",
            )
        value = h.headers.get("Authorization", "")
        token = value[len("Bearer ") :] if value.startswith("Bearer ") else ""
        with self._lock:
            scopes = self._access_scopes.get(token)
            channel = self._channel
        if scopes is not None and not scopes & _READ_SCOPES:
            raise _ApiError(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
                domain="global",
            )
        wanted = {i for i in params.get("id", "").split(",") if i}
        items = []
        if channel is not None and (not wanted or channel[0] in wanted):
            item: dict[str, Any] = {
                "kind": "youtube#channel",
                "etag": hashlib.sha256(channel[0].encode()).hexdigest()[:27],
                "id": channel[0],
            }
            if "snippet" in parts:
                item["snippet"] = {"title": channel[1], "description": ""}
            items.append(item)
        payload = {
            "kind": "youtube#channelListResponse",
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": 5},
        }
        return 200, payload, {}

    def _refresh_lifetime(self, refresh_token: str, now: datetime) -> timedelta | None:
        """What is left of ``refresh_token``'s life (None: no time limit); must hold the lock.
        A testing app's token lives ``refresh_token_lifetime`` (7 days) from when the fake first
        saw (or issued) it."""
        if self._app_status != "testing":
            return None
        first = self._refresh_first_seen.setdefault(refresh_token, now)
        return first + self._refresh_token_lifetime - now

    def _token(self, body: bytes) -> tuple[int, Any]:
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        requested = frozenset(form.get("scope", "").split())
        now = self._clock()
        with self._lock:
            revoked = self._refresh_revoked
            self._tokens_issued += 1
            issued = self._tokens_issued
            granted_config = self._granted_scopes
            refresh_token = form.get("refresh_token", "")
            if grant == "authorization_code":
                refresh_token = f"fake-refresh-{issued}"
            left = self._refresh_lifetime(refresh_token, now) if refresh_token else None
        if grant == "refresh_token" and (revoked or (left is not None and left <= timedelta(0))):
            return 400, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        if grant not in ("refresh_token", "authorization_code"):
            return 400, {"error": "unsupported_grant_type"}
        if granted_config is not None and requested and not requested <= granted_config:
            return 400, {
                "error": "invalid_scope",
                "error_description": "Some requested scopes were invalid.",
            }
        granted = granted_config or requested or frozenset(DEFAULT_GRANTED_SCOPES)
        access_token = self._required_token or f"fake-access-{issued}"
        with self._lock:
            self._access_scopes[access_token] = granted
        payload: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": " ".join(sorted(granted)),
        }
        if left is not None:
            payload["refresh_token_expires_in"] = int(left.total_seconds())
        if grant == "authorization_code":
            payload["refresh_token"] = refresh_token
        return 200, payload
