"""Metering and send discipline of one thread's http object.

:class:`MeteredHttp` wraps the raw ``httplib2.Http`` of one thread (under ``AuthorizedHttp``, so
a request re-sent after a token refresh is seen too). It does two things, both per connection and
without touching any module-level setting of httplib2:

* **Metering.** Each quota-bearing request is reported to ``on_call`` right before its bytes go
  out on the connection (``conn.request`` inside ``httplib2.Http._conn_request``), and a quota
  refusal after. A report that raises stops that request (:class:`CallbackFailed` carries the
  caller's exception out unchanged).
* **No blind re-send.** httplib2 re-sends a request on its own: after a failed send (a
  connection error, ``RETRIES`` times), and once more when the first answer was lost on a
  kept-alive connection (``BadStatusLine``). A send that fails part-way is never repeated here:
  the connection is closed and the original error raised, so our retry loop (which asks the
  server how far it got before re-sending media) decides; that is what setting
  ``httplib2.RETRIES = 1`` process-wide used to do. A quota-bearing request whose answer was
  lost is not re-sent either (the first send may have taken effect: a second playlist entry,
  a second session): it fails with a ``ConnectionResetError``. A media body is a
  :class:`~.streaming.FileBody` that refuses to be iterated twice, so no layer can re-send a
  half-read stream.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Callable
from typing import Any

from .classify import refused_for_quota
from .streaming import FileBody, StreamReused
from .uploader import ApiCallReport, CallCallback, CallPhase, UploadStep

__all__ = ["PLAYLIST_LIST", "CallbackFailed", "MeteredHttp", "metered_operation"]

PLAYLIST_LIST = "playlistItems.list"

_METERED_PATHS = (
    # (HTTP method, path suffix, operation); the upload of media or a status query (a PUT to
    # the session URI) is not a call of its own and costs nothing.
    ("POST", "/upload/youtube/v3/videos", UploadStep.INSERT.value),
    ("POST", "/upload/youtube/v3/thumbnails/set", UploadStep.THUMBNAIL.value),
    ("POST", "/youtube/v3/playlistItems", UploadStep.PLAYLIST.value),
    ("GET", "/youtube/v3/playlistItems", PLAYLIST_LIST),
    ("GET", "/youtube/v3/videos", "videos.list"),
    ("GET", "/youtube/v3/channels", "channels.list"),
    ("PUT", "/youtube/v3/videos", "videos.update"),
    ("DELETE", "/youtube/v3/videos", "videos.delete"),
)


class CallbackFailed(Exception):
    """Carries an exception raised by a caller's callback (``on_call``, ``progress``) out of
    the client's frames unchanged; never retried or classified."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"a callback raised {type(original).__name__}")
        self.original = original


class _SendFailed(Exception):
    """Internal: a send failed; carried past httplib2's own retry handling (which only catches
    socket and HTTP errors) and unwrapped by :meth:`MeteredHttp.request`."""

    def __init__(self, original: BaseException) -> None:
        super().__init__("send failed")
        self.original = original


def _streamed(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Is the body of this ``conn.request(method, url, body, headers)`` a streamed one?"""
    body = args[2] if len(args) > 2 else kwargs.get("body")
    return isinstance(body, FileBody)


def metered_operation(uri: str, method: str) -> str | None:
    """The quota-bearing operation a request is, or None (media, status queries, tokens)."""
    split = urllib.parse.urlsplit(uri)
    if "upload_id=" in split.query:
        return None  # media or a status query of an open session
    for verb, suffix, operation in _METERED_PATHS:
        if verb in ("PUT", "DELETE") and split.path.endswith("/upload" + suffix):
            continue  # the upload endpoint is not videos.update / videos.delete
        if method.upper() == verb and split.path.endswith(suffix):
            return operation
    return None


class MeteredHttp:
    """See the module docstring. When the ``_conn_request`` hook is missing (another http
    object), each quota-bearing ``request`` counts once and sends are not guarded."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.on_call: CallCallback | None = None
        self._next_id = 0
        self._operation: str | None = None
        self._sends = 0
        self._per_connection = callable(getattr(inner, "_conn_request", None))
        if self._per_connection:
            inner._conn_request = self._guard(inner._conn_request)

    def _guard(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def conn_request(conn: Any, *args: Any, **kwargs: Any) -> Any:
            send = conn.request
            conn.request = self._guarded_send(conn, send, self._operation)
            try:
                return original(conn, *args, **kwargs)
            finally:
                with contextlib.suppress(AttributeError):
                    del conn.request

        return conn_request

    def _guarded_send(
        self, conn: Any, send: Callable[..., Any], operation: str | None
    ) -> Callable[..., Any]:
        sends = 0

        def guarded(*a: Any, **k: Any) -> Any:
            nonlocal sends
            sends += 1
            if sends > 1 and operation is not None:
                # httplib2 re-sending on its own after a lost answer: refuse; our retry loop
                # decides, and checks before re-sending.
                raise ConnectionResetError(
                    f"the answer to {operation} was lost; not re-sent blindly"
                )
            if sends > 1 and _streamed(a, k):
                # A streamed body is never re-sent by a lower layer: our loop asks the server
                # how far it got and sends the rest.
                raise StreamReused("the answer to a streamed request was lost; not re-sent")
            if operation is not None:
                self._report_sending(operation)
            try:
                return send(*a, **k)
            except Exception as exc:
                # Part of the request may be on the wire: this connection is done, and the
                # request is not repeated by httplib2 (see the module docstring).
                with contextlib.suppress(Exception):
                    conn.close()
                raise _SendFailed(exc) from exc
            except BaseException:  # KeyboardInterrupt, SystemExit: unchanged, but never reused
                with contextlib.suppress(Exception):
                    conn.close()
                raise

        return guarded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _report(self, report: ApiCallReport) -> None:
        if self.on_call is None:
            return
        try:
            self.on_call(report)
        except Exception as exc:
            raise CallbackFailed(exc) from exc

    def _report_sending(self, operation: str) -> None:
        self._next_id += 1
        self._sends = self._next_id
        self._report(
            ApiCallReport(operation=operation, phase=CallPhase.SENDING, call_id=self._next_id)
        )

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, bytes]:
        if isinstance(body, FileBody) and body.spent:
            # A layer above (AuthorizedHttp after a 401) sending a streamed request again.
            raise StreamReused("a streamed request body cannot be sent twice")
        # Found even without an on_call: a quota-bearing request is never re-sent blindly.
        operation = metered_operation(uri, method)
        self._sends = 0
        if operation is not None and not self._per_connection:
            self._report_sending(operation)
        self._operation = operation
        try:
            resp, content = self._inner.request(uri, method, body=body, headers=headers, **kwargs)
        except _SendFailed as failed:
            raise failed.original from None
        finally:
            self._operation = None
        if operation is not None and self._sends:
            status = int(getattr(resp, "status", 0) or 0)
            if refused_for_quota(status, content):
                self._report(
                    ApiCallReport(operation=operation, phase=CallPhase.REFUSED, call_id=self._sends)
                )
        return resp, content
