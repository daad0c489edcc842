"""``FakeYouTube``: a loopback fake of the YouTube Data API v3 for offline tests.

It is a real HTTP server (``http.server.ThreadingHTTPServer`` on ``127.0.0.1``, an ephemeral
port) speaking the protocol google-api-python-client uses, so your code under test runs the real
client code path. It lives in the test process; clients in other processes (a processor you
spawn) can connect to it over loopback too.

The package has three layers, each a base class of :class:`FakeYouTube`: ``_http`` (the server,
routing, recording, faults on demand), ``_rules`` (YouTube's rules and state: validation, quota,
videos, thumbnails, playlists, tokens) and ``_sessions`` (the resumable protocol). Import
everything from ``langflix_scheduler.testing.fake_youtube`` (or ``langflix_scheduler.testing``).

Quick start::

    from langflix_scheduler.testing import FakeYouTube
    from langflix_scheduler.youtube.google import YouTubeUploader
    from google.oauth2.credentials import Credentials

    with FakeYouTube() as fake:
        uploader = YouTubeUploader(Credentials(token="any"), api_endpoint=fake.api_endpoint)
        result = uploader.upload(request)
        video = fake.videos[result.video_id]
        assert video.size == os.path.getsize(request.video_path)
        assert video.status["publishAt"] == "2030-01-01T10:00:00Z"

What it speaks:

* ``POST /upload/youtube/v3/videos?uploadType=resumable&part=...`` opens a session: ``200`` with a
  ``Location`` session URI (``uploadType=multipart`` uploads in one request also work).
* ``PUT <session URI>`` with ``Content-Range: bytes a-b/total``: ``308`` with ``Range: bytes=0-n``
  until complete, then ``200`` with the video resource. ``Content-Range: bytes */total`` is a
  status query (``308`` + ``Range``, or the resource when complete). Unknown or expired session:
  ``404``.
* ``POST /upload/youtube/v3/thumbnails/set?videoId=...`` (simple or multipart),
  ``POST /youtube/v3/playlistItems?part=snippet``,
  ``GET /youtube/v3/playlistItems?part=id&playlistId=...&videoId=...`` (1 unit),
  ``GET /youtube/v3/videos?id=...``,
  ``GET /youtube/v3/channels?part=id,snippet&mine=true`` (1 unit: the channel set with
  ``channel_id``/``channel_title`` or :meth:`~FakeYouTube.set_channel`; 403
  ``insufficientPermissions`` for a token the fake issued without a YouTube read scope).
* ``POST /token``: an OAuth token endpoint (refresh and authorization-code grants), for testing
  credential refresh offline (``load_credentials(path, token_uri=fake.token_uri)``). Answers
  carry the granted ``scope``; with ``app_status="testing"`` refresh tokens live 7 days (fake
  clock) from when the fake first sees them, answers carry ``refresh_token_expires_in``, and
  an expired one gets ``invalid_grant``, as does every refresh after
  :meth:`~FakeYouTube.revoke_refresh_tokens`.

A video's life after upload (``_lifecycle``; time moves only with the fake's ``clock``, and
each request or look at ``videos`` first brings every video up to that time):

* Processing takes ``processing_time`` (default 0): ``uploadStatus=uploaded`` and
  ``processingDetails.processingStatus=processing`` until then, then ``processed``/``succeeded``;
  or, by a rule the test sets, :meth:`~FakeYouTube.fail_processing` (``failed`` +
  ``failureReason``, processing ``failed``) or :meth:`~FakeYouTube.reject_uploads` (``rejected``
  + ``rejectionReason``, processing ``terminated``), for the next ``n`` uploads or every upload
  with a given title.
* ``locked_private=True``: every upload ends private with no ``publishAt`` (and
  ``videos.update`` cannot change that), whatever was sent.
* A processed private video whose ``publishAt`` has passed is public (``published_at`` set).
* ``GET /youtube/v3/videos?part=...&id=...`` answers the parts asked for (``status``,
  ``processingDetails``, ``snippet``); unknown and deleted ids are absent.
  ``PUT /youtube/v3/videos?part=status|snippet`` (50 units) replaces the whole part like
  YouTube: a mutable property left out is reset (status) or removed (snippet), and each update
  is recorded in :attr:`~FakeYouTube.video_updates` with what it ``reset``. ``publishAt`` needs
  ``private`` and a video never published. ``DELETE /youtube/v3/videos?id=...`` (50 units):
  204, or 404 ``videoNotFound``.
* ``channels.list(part=contentDetails)`` carries ``relatedPlaylists.uploads``
  (:attr:`~FakeYouTube.uploads_playlist_id`), and ``playlistItems.list`` of that playlist pages
  the channel's videos newest first (``maxResults`` <= 50, ``pageToken``).
* The test's hands on the channel: :meth:`~FakeYouTube.add_channel_video` (a video the library
  does not know), :meth:`~FakeYouTube.remove_video` (deleted behind its back),
  :meth:`~FakeYouTube.set_video_status` (changed in Studio); :attr:`~FakeYouTube.deleted_videos`.
* ``refresh_token_lifetime`` sets how long a testing app's refresh tokens live.

It validates like YouTube (title required, <= 100 characters, description <= 5,000 bytes, no
``<``/``>``, tags <= 500 characters, known category, ``publishAt`` only with ``private``) and
answers errors with YouTube's body shape ``{"error": {"code", "message", "errors": [{"reason",
"domain", "message"}]}}``. A past ``publishAt`` is accepted and the video published at once, as
YouTube does (``FakeVideo.published_immediately``).

Quota is counted per Pacific-time day and bucket with the 2026 granular model by default
(``videos.insert``: bucket ``uploads``, 100 calls; everything else: bucket ``shared``, 10,000
units); pass ``quota_policy`` for another model. A spent ``uploads`` bucket answers 429
``rateLimitExceeded`` "... 'Video Uploads per day' ..."; any other spent bucket answers 403
``quotaExceeded``. Every request is charged, even an invalid one (not chunk PUTs); injected
faults are answered before the request is counted or charged.

Faults on demand (all thread-safe): :meth:`FakeYouTube.fail_next`, ``error_rate`` (fraction of
chunk PUTs answered 503, seeded), :meth:`~FakeYouTube.drop_next_chunk` (read part of a chunk, then
close the connection without answering; the fake keeps the part received, rounded down to
256 KiB, like a server that persisted it; a body cut short by the client is kept the same
way), :meth:`~FakeYouTube.drop_reply_next` (carry a request out, charge it, then close the
connection without answering: a lost answer), ``latency``, :meth:`~FakeYouTube.quota_exceeded_next`,
:meth:`~FakeYouTube.upload_limit_next`, :meth:`~FakeYouTube.unauthorized_next`,
:meth:`~FakeYouTube.expire_sessions`, :meth:`~FakeYouTube.revoke_refresh_tokens`.

What it records, for exactly-once and integrity assertions: ``videos`` (id -> :class:`FakeVideo`
with metadata, ``sha256`` and ``size`` of the received bytes, thumbnail, playlists),
``insert_calls``, ``bytes_received`` (every media byte read, re-sends included),
``chunks_received``, ``status_queries``, ``sessions``, ``requests`` (each with its
``operation`` and ``query``), ``calls_of(operation)``, ``quota_used()`` and ``charged()``
(units charged per quota day and method, every initiation included).

Any bearer token is accepted unless ``required_token`` is given; a request without one gets 401.
"""

from __future__ import annotations

from ._errors import UPLOADS_BUCKET
from ._fake import DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_TITLE, FakeYouTube
from ._http import CONNECTION_IDLE_TIMEOUT_S, OPERATIONS, RecordedRequest
from ._lifecycle import STATUS_MUTABLE, FakeVideoUpdate
from ._rules import (
    DESCRIPTION_MAX_BYTES,
    TAGS_MAX_CHARS,
    TESTING_REFRESH_TOKEN_LIFETIME,
    THUMBNAIL_MAX_BYTES,
    TITLE_MAX_CHARS,
    VALID_CATEGORY_IDS,
    FakeVideo,
)
from ._sessions import PERSIST_GRANULARITY, FakeSession

__all__ = [
    "CONNECTION_IDLE_TIMEOUT_S",
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_CHANNEL_TITLE",
    "DESCRIPTION_MAX_BYTES",
    "PERSIST_GRANULARITY",
    "TAGS_MAX_CHARS",
    "TESTING_REFRESH_TOKEN_LIFETIME",
    "THUMBNAIL_MAX_BYTES",
    "TITLE_MAX_CHARS",
    "UPLOADS_BUCKET",
    "VALID_CATEGORY_IDS",
    "FakeSession",
    "FakeVideo",
    "FakeVideoUpdate",
    "OPERATIONS",
    "STATUS_MUTABLE",
    "FakeYouTube",
    "RecordedRequest",
]
