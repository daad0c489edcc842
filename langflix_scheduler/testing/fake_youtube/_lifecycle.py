"""A video's life after upload in the fake: processing on the fake's clock (succeeding,
failing or rejected by rules the test sets), a locked-private project, ``publishAt`` turning a
video public, ``videos.list/update/delete``, the channel's uploads playlist, and the test's
hands on the channel (a video the library does not know, a deletion behind its back).

Time only moves with the fake's clock: every request, and every look at
:attr:`FakeYouTube.videos`, first brings each video up to date (:meth:`VideoLife._advance`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ._errors import _ApiError, _invalid
from ._http import Answer, _Handler
from ._rules import FakeVideo, _parse_rfc3339
from ._sessions import ResumableSessions

#: What processing can end in.
OUTCOMES = frozenset({"succeeded", "failed", "rejected"})
#: Properties of the ``status`` part a ``videos.update`` sets; one left out is reset to its
#: default (YouTube's rule), and the fake records which were left out.
STATUS_MUTABLE = {
    "privacyStatus": "public",
    "embeddable": True,
    "license": "youtube",
    "publicStatsViewable": True,
    "selfDeclaredMadeForKids": False,
    "containsSyntheticMedia": False,
}
#: The same for the ``snippet`` part (title and categoryId are required; absent ones removed).
SNIPPET_MUTABLE = (
    "title",
    "description",
    "tags",
    "categoryId",
    "defaultLanguage",
    "defaultAudioLanguage",
)
_SNIPPET_REQUIRED = ("title", "categoryId")
#: ``playlistItems.list`` answers at most this many items per page.
MAX_PAGE = 50
_DEFAULT_PAGE = 5


@dataclass(frozen=True, kw_only=True)
class FakeVideoUpdate:
    """One ``videos.update`` the fake carried out.

    Attributes:
        video_id: the video.
        part: ``"status"`` or ``"snippet"``.
        sent: that part exactly as the client sent it.
        reset: mutable properties of the part the client left out, which the fake (like
            YouTube) reset to their defaults or removed: empty when the whole part was sent.
        at: when (fake clock).
    """

    video_id: str
    part: str
    sent: Mapping[str, Any]
    reset: tuple[str, ...]
    at: datetime


@dataclass(kw_only=True)
class _OutcomeRule:
    outcome: str
    reason: str
    title: str | None
    remaining: int


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found(video_id: str) -> _ApiError:
    return _ApiError(
        404,
        "videoNotFound",
        f"The video identified by the id parameter ({video_id}) could not be found.",
        domain="youtube.video",
    )


class VideoLife(ResumableSessions):
    """See the module docstring (state set by ``FakeYouTube``)."""

    _processing_time: timedelta
    _locked_private: bool
    _outcome_rules: list[_OutcomeRule]
    _deleted: dict[str, FakeVideo]
    _video_updates: list[FakeVideoUpdate]

    # -- the test's controls -------------------------------------------------------------------

    @property
    def processing_time(self) -> timedelta:
        """How long processing takes on the fake's clock (uploads from now on)."""
        with self._lock:
            return self._processing_time

    @processing_time.setter
    def processing_time(self, value: timedelta) -> None:
        if value < timedelta(0):
            raise ValueError("processing_time must be >= 0")
        with self._lock:
            self._processing_time = value

    @property
    def locked_private(self) -> bool:
        """A locked-private project: every upload ends private with no ``publishAt``, and
        ``videos.update`` cannot make it public or schedule it, whatever was sent."""
        with self._lock:
            return self._locked_private

    @locked_private.setter
    def locked_private(self, value: bool) -> None:
        with self._lock:
            self._locked_private = bool(value)

    def fail_processing(
        self, *, title: str | None = None, reason: str = "codec", n: int = 1
    ) -> None:
        """Processing of the next ``n`` uploads (or of every upload titled ``title``) fails:
        ``uploadStatus=failed``, ``failureReason=reason``, ``processingStatus=failed``."""
        self._add_outcome("failed", reason, title, n)

    def reject_uploads(
        self, *, title: str | None = None, reason: str = "duplicate", n: int = 1
    ) -> None:
        """The next ``n`` uploads (or every upload titled ``title``) are rejected:
        ``uploadStatus=rejected``, ``rejectionReason=reason``."""
        self._add_outcome("rejected", reason, title, n)

    def _add_outcome(self, outcome: str, reason: str, title: str | None, n: int) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        with self._lock:
            self._outcome_rules.append(
                _OutcomeRule(outcome=outcome, reason=reason, title=title, remaining=n)
            )

    def add_channel_video(
        self,
        title: str = "Uploaded elsewhere",
        *,
        privacy_status: str = "public",
        publish_at: datetime | None = None,
        uploaded_at: datetime | None = None,
        status: Mapping[str, Any] | None = None,
    ) -> FakeVideo:
        """Put a processed video on the channel that the library did not upload (an upload
        whose outcome was never recorded, one made in Studio). Costs no quota, sends nothing."""
        now = uploaded_at or self._clock()
        full_status: dict[str, Any] = {
            **STATUS_MUTABLE,
            "uploadStatus": "processed",
            "privacyStatus": privacy_status,
            **(status or {}),
        }
        if publish_at is not None:
            full_status["publishAt"] = _rfc3339(publish_at)
        with self._lock:
            self._next_video += 1
            video_id = f"v{self._next_video:010d}"
            video = FakeVideo(
                id=video_id,
                snippet=self._snippet_defaults({"title": title}, now),
                status=full_status,
                request_body={},
                size=0,
                sha256="0" * 64,
                created_at=now,
                processing_done_at=now,
                published_at=now if privacy_status == "public" else None,
                added_by_test=True,
            )
            self._videos[video_id] = video
        return video

    def remove_video(self, video_id: str) -> FakeVideo:
        """Delete a video behind the library's back (someone deleted it in Studio): it is gone
        from ``videos.list`` and the uploads playlist. Raises ``KeyError`` when unknown."""
        with self._lock:
            video = self._videos.pop(video_id)
            self._deleted[video_id] = video
            return video

    def set_video_status(self, video_id: str, **fields: Any) -> FakeVideo:
        """Change a video's ``status`` part behind the library's back (as in Studio), e.g.
        ``embeddable=False`` or ``privacyStatus="public"``; a field set to None is removed."""
        with self._lock:
            video = self._videos[video_id]
            status = {**video.status, **fields}
            status = {k: v for k, v in status.items() if v is not None}
            changed = replace(video, status=status)
            if status.get("privacyStatus") == "public" and video.published_at is None:
                changed = replace(changed, published_at=self._clock())
            self._videos[video_id] = changed
            return changed

    @property
    def deleted_videos(self) -> dict[str, FakeVideo]:
        """Videos deleted (by ``videos.delete`` or :meth:`remove_video`), as they last were."""
        with self._lock:
            return dict(self._deleted)

    @property
    def video_updates(self) -> tuple[FakeVideoUpdate, ...]:
        """Every ``videos.update`` carried out, in order (see :class:`FakeVideoUpdate`)."""
        with self._lock:
            return tuple(self._video_updates)

    @property
    def uploads_playlist_id(self) -> str | None:
        """The id of the channel's uploads playlist (``UU`` + the channel id's tail)."""
        channel = self.channel
        return None if channel is None else "UU" + channel[0][2:]

    @property
    def videos(self) -> dict[str, FakeVideo]:
        """A snapshot, brought up to the fake's clock: video id -> :class:`FakeVideo`."""
        with self._lock:
            self._advance()
            return dict(self._videos)

    # -- time ----------------------------------------------------------------------------------

    def _advance(self) -> None:
        """Bring every video up to the fake's clock: end processing that is due, publish a
        processed private video whose ``publishAt`` passed. Must hold the lock."""
        now = self._clock()
        for video_id, video in list(self._videos.items()):
            advanced = self._publish_due(self._processing_due(video, now), now)
            if advanced is not video:
                self._videos[video_id] = advanced

    @staticmethod
    def _processing_due(video: FakeVideo, now: datetime) -> FakeVideo:
        if video.status.get("uploadStatus") != "uploaded":
            return video
        if video.processing_done_at is not None and now < video.processing_done_at:
            return video
        status = dict(video.status)
        if video.processing_outcome == "failed":
            status.update(uploadStatus="failed", failureReason=video.processing_reason)
        elif video.processing_outcome == "rejected":
            status.update(uploadStatus="rejected", rejectionReason=video.processing_reason)
        else:
            status["uploadStatus"] = "processed"
        return replace(video, status=status)

    @staticmethod
    def _publish_due(video: FakeVideo, now: datetime) -> FakeVideo:
        status = video.status
        publish_at = _parse_rfc3339(status.get("publishAt"))
        if (
            publish_at is None
            or publish_at > now
            or status.get("uploadStatus") != "processed"
            or status.get("privacyStatus") != "private"
        ):
            return video
        published = {k: v for k, v in status.items() if k != "publishAt"}
        published["privacyStatus"] = "public"
        return replace(video, status=published, published_at=max(publish_at, video.created_at))

    # -- uploads: processing plan and the locked-private project -------------------------------

    def _finish_video(
        self, resource: Mapping[str, Any], data: bytes, *, upload_type: str
    ) -> FakeVideo:
        video = super()._finish_video(resource, data, upload_type=upload_type)
        now = video.created_at
        with self._lock:
            rule = self._take_outcome(str(video.snippet.get("title", "")))
            status = {**STATUS_MUTABLE, **video.status}
            published_immediately = video.published_immediately
            if self._locked_private:
                status["privacyStatus"] = "private"
                status.pop("publishAt", None)
                published_immediately = False
            video = replace(
                video,
                status=status,
                published_immediately=published_immediately,
                published_at=now if status["privacyStatus"] == "public" else None,
                processing_done_at=now + self._processing_time,
                processing_outcome=rule.outcome if rule else "succeeded",
                processing_reason=rule.reason if rule else None,
            )
            self._videos[video.id] = video
        return video

    def _take_outcome(self, title: str) -> _OutcomeRule | None:
        """The rule deciding this upload's processing (a titled rule first); must hold the lock."""
        for rule in self._outcome_rules:
            if rule.title is not None and rule.title == title:
                return rule
        for rule in self._outcome_rules:
            if rule.title is None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._outcome_rules.remove(rule)
                return rule
        return None

    def _snippet_defaults(self, snippet: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        channel = self.channel
        out = dict(snippet)
        out.setdefault("description", "")
        out.setdefault("categoryId", "22")
        out["publishedAt"] = _rfc3339(now)
        out["channelId"] = channel[0] if channel else "UCfakeChannel000000000000"
        return out

    # -- videos.list / update / delete -----------------------------------------------------------

    def _list(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        self._charge("videos.list")
        ids = [i for i in params.get("id", "").split(",") if i]
        if len(ids) > MAX_PAGE:
            raise _ApiError(400, "invalidFilters", "At most 50 ids may be given.")
        parts = frozenset(p.strip() for p in params.get("part", "").split(",") if p.strip())
        with self._lock:
            self._advance()
            items = [self._videos[i].resource(parts or None) for i in ids if i in self._videos]
        payload = {
            "kind": "youtube#videoListResponse",
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }
        return 200, payload, {}

    def _update(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        self._charge("videos.update")
        part = params.get("part", "")
        if part not in ("status", "snippet"):
            raise _ApiError(
                400, "invalidPart", f"part {part!r}: the fake updates status or snippet"
            )
        try:
            resource = json.loads(body.decode("utf-8"))
            video_id = str(resource["id"])
            sent = dict(resource[part])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise _ApiError(400, "parseError", f"the body needs id and {part}") from None
        with self._lock:
            self._advance()
            video = self._videos.get(video_id)
            if video is None:
                raise _not_found(video_id)
            if part == "status":
                video, reset = self._replace_status(video, sent)
            else:
                video, reset = self._replace_snippet(video, sent)
            self._videos[video_id] = video
            self._video_updates.append(
                FakeVideoUpdate(
                    video_id=video_id, part=part, sent=sent, reset=reset, at=self._clock()
                )
            )
            self._advance()
            answer = self._videos[video_id].resource(frozenset({part}))
        return 200, answer, {}

    def _replace_status(
        self, video: FakeVideo, sent: Mapping[str, Any]
    ) -> tuple[FakeVideo, tuple[str, ...]]:
        """The whole status part replaced by ``sent`` (must hold the lock)."""
        privacy = sent.get("privacyStatus", STATUS_MUTABLE["privacyStatus"])
        if privacy not in ("public", "unlisted", "private"):
            raise _invalid("invalidVideoMetadata", "invalid privacy status")
        status = {k: v for k, v in video.status.items() if k not in STATUS_MUTABLE}
        status.pop("publishAt", None)
        reset = tuple(k for k in STATUS_MUTABLE if k not in sent)
        status.update({k: sent.get(k, default) for k, default in STATUS_MUTABLE.items()})
        if "publishAt" in sent:
            publish_at = _parse_rfc3339(sent["publishAt"])
            if publish_at is None or privacy != "private":
                raise _invalid(
                    "invalidPublishAt",
                    "publishAt must be RFC 3339 and needs privacyStatus private.",
                )
            if video.published_at is not None:
                raise _invalid(
                    "invalidPublishAt", "publishAt can only be set on a video never published."
                )
            status["publishAt"] = _rfc3339(publish_at)
        if self._locked_private:
            status["privacyStatus"] = "private"
            status.pop("publishAt", None)
        changed = replace(video, status=status)
        if status["privacyStatus"] == "public" and video.published_at is None:
            changed = replace(changed, published_at=self._clock())
        return changed, reset

    def _replace_snippet(
        self, video: FakeVideo, sent: Mapping[str, Any]
    ) -> tuple[FakeVideo, tuple[str, ...]]:
        """The whole snippet part replaced by ``sent`` (must hold the lock)."""
        for name in _SNIPPET_REQUIRED:
            if not sent.get(name):
                raise _invalid(
                    "invalidTitle" if name == "title" else "invalidCategoryId",
                    f"snippet.{name} is required when updating the snippet.",
                )
        self._validate_video({"part": "snippet"}, json.dumps({"snippet": sent}).encode())
        kept = {k: v for k, v in video.snippet.items() if k not in SNIPPET_MUTABLE}
        kept.update({k: sent[k] for k in SNIPPET_MUTABLE if k in sent})
        reset = tuple(k for k in SNIPPET_MUTABLE if k not in sent)
        return replace(video, snippet=kept), reset

    def _delete(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        self._charge("videos.delete")
        video_id = params.get("id", "")
        with self._lock:
            if video_id not in self._videos:
                raise _not_found(video_id)
            self._deleted[video_id] = self._videos.pop(video_id)
        return 204, None, {}

    # -- the channel and its uploads playlist ----------------------------------------------------

    def _channels(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        status, payload, headers = super()._channels(h, params, body)
        if "contentDetails" in params.get("part", "").split(","):
            for item in payload.get("items", []):
                item["contentDetails"] = {
                    "relatedPlaylists": {"likes": "", "uploads": "UU" + str(item["id"])[2:]}
                }
        return status, payload, headers

    def _playlist_list(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        uploads = self.uploads_playlist_id
        if uploads is None or params.get("playlistId") != uploads:
            return super()._playlist_list(h, params, body)
        self._charge("playlistItems.list")
        size = int(params.get("maxResults") or _DEFAULT_PAGE)
        if not 0 <= size <= MAX_PAGE:
            raise _ApiError(400, "invalidValue", "maxResults must be between 0 and 50.")
        token = params.get("pageToken") or "page-0"
        if not token.startswith("page-") or not token[5:].isdigit():
            raise _ApiError(400, "invalidPageToken", "The request specifies an invalid page token.")
        start = int(token[5:])
        with self._lock:
            self._advance()
            newest = sorted(self._videos.values(), key=lambda v: (v.created_at, v.id), reverse=True)
        page = newest[start : start + size]
        payload: dict[str, Any] = {
            "kind": "youtube#playlistItemListResponse",
            "items": [self._upload_item(uploads, start + n, v) for n, v in enumerate(page)],
            "pageInfo": {"totalResults": len(newest), "resultsPerPage": size},
        }
        if start + size < len(newest):
            payload["nextPageToken"] = f"page-{start + size}"
        if start:
            payload["prevPageToken"] = f"page-{max(0, start - size)}"
        return 200, payload, {}

    @staticmethod
    def _upload_item(playlist_id: str, position: int, video: FakeVideo) -> dict[str, Any]:
        uploaded = _rfc3339(video.created_at)
        content: dict[str, Any] = {"videoId": video.id}
        if video.published_at is not None:
            content["videoPublishedAt"] = _rfc3339(video.published_at)
        return {
            "kind": "youtube#playlistItem",
            "id": f"{playlist_id}.{video.id}",
            "snippet": {
                "publishedAt": uploaded,
                "title": video.snippet.get("title", ""),
                "playlistId": playlist_id,
                "position": position,
                "resourceId": {"kind": "youtube#video", "videoId": video.id},
            },
            "contentDetails": content,
            "status": {"privacyStatus": video.status.get("privacyStatus")},
        }
