"""The dashboard's ASGI application: pages, their JSON twins under ``/api``, actions, metrics.

Build it with :func:`create_app` and mount it in your own Starlette/FastAPI site, or serve it with
``langflix-scheduler web``. See ``docs/web.md``.
"""

from __future__ import annotations

import calendar as _calendar
import dataclasses
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..change_local import describe
from ..changes import VideoChangeRecord
from ..domain import ProcessorRunRecord, ScheduledVideo, UploadStatus
from ..errors import (
    DuplicateVideoError,
    InvalidScheduleError,
    InvalidTransitionError,
    QuotaExceededError,
    ScheduleNotFoundError,
    SchedulerError,
    SlotUnavailableError,
    StorageError,
)
from ..manager import MAX_SCHEDULE_ID, ScheduleManager
from ..overview import PROBLEM_KINDS, explain, format_local
from ..quota import quota_date_of
from ..reports import CalendarDay, CalendarSlot, QuotaDayUsage, TimelineEvent, json_default
from .security import AUTH_COOKIE, CSRF_COOKIE, Guard, SecurityHeaders, redact

__all__ = ["create_app"]

_HERE = Path(__file__).parent
_QUOTA_DAYS = 14
_RUNS_LIMIT = 200
#: Slots a month-view day lists before summarising the rest (the week view lists every one).
MONTH_CELL_SLOTS = 24
_DONE_MESSAGES = {
    "cancelled": "Cancelled: the slot, the day's count and the reserved quota were freed.",
    "rescheduled": "Rescheduled: slot and quota moved.",
    "retried": "Put back for a retry: the next processor run uploads it.",
}


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready builtins (dates ISO 8601, enums by value)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _plain(json_default(value))


def schedule_json(s: ScheduledVideo) -> dict[str, Any]:
    """One schedule as the JSON endpoints (and the CLI's ``--json``) show it."""
    data = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}
    data["metadata"] = s.metadata.to_json()
    data["last_error"] = redact(s.last_error) or None
    data.pop("lease_owner", None)
    return _plain(data)  # type: ignore[no-any-return]


def _run_json(r: ProcessorRunRecord) -> dict[str, Any]:
    data = _plain({f.name: getattr(r, f.name) for f in dataclasses.fields(r)})
    data["error"] = redact(r.error) or None
    return data  # type: ignore[no-any-return]


def _change_json(c: VideoChangeRecord, what: str) -> dict[str, Any]:
    """A pending change of plan for ``/api/attention`` (``what``: its redacted description)."""
    return {
        "id": c.id,
        "schedule_id": c.schedule_id,
        "kind": c.kind.value,
        "state": c.state.value,
        "what": what,
        "requested_at": c.requested_at,
        "requested_by": redact(c.requested_by) or None,
        "lease_expires_at": c.lease_expires_at,
        "error": redact(c.error) or None,
    }


class _Problem(Exception):
    """An HTTP error page with a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _status_of(exc: SchedulerError) -> int:
    if isinstance(exc, ScheduleNotFoundError):
        return 404
    if isinstance(
        exc,
        SlotUnavailableError | InvalidTransitionError | QuotaExceededError | DuplicateVideoError,
    ):
        return 409
    if isinstance(exc, InvalidScheduleError):
        return 400
    if isinstance(exc, StorageError):
        return 503
    return 400


class _Dashboard:
    """Request handlers bound to one manager and one set of options."""

    def __init__(
        self,
        manager: ScheduleManager,
        *,
        read_only: bool,
        guard: Guard,
        metrics: bool,
        title: str,
    ) -> None:
        self.m = manager
        self.read_only = read_only
        self.guard = guard
        self.metrics_enabled = metrics
        self.title = title
        self.env = Environment(
            loader=FileSystemLoader(str(_HERE / "templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["redact"] = redact
        self.env.filters["local"] = lambda t: format_local(t, self.m.config.zone)
        self.env.filters["hm"] = lambda t: t.astimezone(self.m.config.zone).strftime("%H:%M")
        self.env.filters["iso"] = lambda t: "" if t is None else t.isoformat()
        self.env.filters["version"] = form_version

    # -- plumbing -----------------------------------------------------------------------------

    def _csrf_cookie(self, request: Request) -> tuple[str, bool]:
        """The request's CSRF cookie, or a new one (the same for the whole request)."""
        cached: tuple[str, bool] | None = getattr(request.state, "csrf_cookie", None)
        if cached is not None:
            return cached
        cookie = request.cookies.get(CSRF_COOKIE)
        if cookie and 16 <= len(cookie) <= 64:
            result = (cookie, False)
        else:
            result = (self.guard.new_csrf_cookie(), True)
        request.state.csrf_cookie = result
        return result

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def _set_cookie(self, request: Request, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=self._base(request) or "/",
        )

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        cookie, new = self._csrf_cookie(request)
        page = self.env.get_template(template).render(
            base=self._base(request),
            title=self.title,
            read_only=self.read_only,
            csrf=self.guard.csrf_token(cookie),
            zone=self.m.config.timezone,
            metrics_enabled=self.metrics_enabled,
            logged_in=self.guard.token is not None and AUTH_COOKIE in request.cookies,
            **context,
        )
        response = HTMLResponse(page, status_code=status)
        if new:
            self._set_cookie(request, response, CSRF_COOKIE, cookie)
        return response

    def problem(self, request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith(f"{self._base(request)}/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return self.render(request, "error.html", status=status, message=message)

    def _authorised(self, request: Request) -> Response | None:
        if self.guard.authenticated(request.headers, dict(request.cookies)):  # type: ignore[arg-type]
            return None
        html = "text/html" in request.headers.get("accept", "")
        base = self._base(request)
        if self.guard.token is not None and html and request.method == "GET":
            return RedirectResponse(f"{base}/login?{urlencode({'next': request.url.path})}", 303)
        headers = {"WWW-Authenticate": 'Basic realm="langflix-scheduler"'}
        if self.guard.basic_auth is None:
            headers = {"WWW-Authenticate": 'Bearer realm="langflix-scheduler"'}
        return Response("authentication required\n", 401, headers=headers)

    def page(self, handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        """A GET handler: auth check, then ``handler`` in a worker thread; typed errors shown."""

        async def endpoint(request: Request) -> Response:
            refused = self._authorised(request)
            if refused is not None:
                return refused
            try:
                return await run_in_threadpool(handler, request)
            except _Problem as exc:
                return self.problem(request, exc.status, exc.message)
            except SchedulerError as exc:
                return self.problem(request, _status_of(exc), redact(str(exc)))

        return endpoint

    def action(
        self, handler: Callable[[Request, int, FormData], ScheduledVideo], done: str
    ) -> Callable[[Request], Any]:
        """A POST handler for one schedule: auth, read-only, CSRF and stale-form checks."""

        async def endpoint(request: Request) -> Response:
            refused = self._authorised(request)
            if refused is not None:
                return refused
            if self.read_only:
                return self.problem(request, 403, "This dashboard is read-only.")
            form = await request.form()
            if not self.guard.csrf_ok(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
                return self.problem(
                    request, 403, "The form's CSRF token is missing or wrong: reload the page."
                )
            try:
                sid = _parse_id(request.path_params["schedule_id"])
                await run_in_threadpool(self._check_version, sid, form.get("version"))
                result = await run_in_threadpool(handler, request, sid, form)
            except _Problem as exc:
                return await self._action_error(request, exc.status, exc.message)
            except SchedulerError as exc:
                return await self._action_error(request, _status_of(exc), redact(str(exc)))
            base = self._base(request)
            return RedirectResponse(f"{base}/schedules/{result.id}?done={done}", 303)

        return endpoint

    async def _action_error(self, request: Request, status: int, message: str) -> Response:
        """The schedule's page again with the error (or a bare error page if it is unknown)."""
        raw = request.path_params.get("schedule_id", "")
        try:
            sid = _parse_id(raw)
            return await run_in_threadpool(
                self._schedule_page, request, sid, error=message, status=status
            )
        except (_Problem, SchedulerError):
            return self.problem(request, status, message)

    def _check_version(self, sid: int, version: object) -> None:
        current = self.m.get(sid)
        if not isinstance(version, str) or not hmac.compare_digest(
            version.encode(), form_version(current).encode()
        ):
            raise _Problem(
                409,
                f"Schedule #{sid} changed since this page was shown (it is now "
                f"{current.status.value}); review it and try again.",
            )

    # -- calendar -----------------------------------------------------------------------------

    def _calendar_data(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        zone = self.m.config.zone
        view = q.get("view", "week")
        if view not in ("week", "month"):
            raise _Problem(400, "view must be week or month")
        names = self.m.known_names()
        channel = q.get("channel") or self.m.config.channel
        today = self.m.now().astimezone(zone).date()
        anchor = _parse_date(q.get("date"), today)
        if view == "week":
            start = anchor - timedelta(days=anchor.weekday())
            end = start + timedelta(days=6)
            prev, nxt = start - timedelta(days=7), start + timedelta(days=7)
        else:
            first = anchor.replace(day=1)
            last = first.replace(day=_calendar.monthrange(first.year, first.month)[1])
            start = first - timedelta(days=first.weekday())
            end = last + timedelta(days=6 - last.weekday())
            prev = (first - timedelta(days=1)).replace(day=1)
            nxt = last + timedelta(days=1)
        days = self.m.calendar(start, end, channel=channel)
        return {
            "view": view,
            "channel": channel,
            "channels": names.channels,
            "anchor": anchor,
            "start": start,
            "end": end,
            "prev": prev,
            "next": nxt,
            "today": today,
            "days": days,
        }

    def calendar_page(self, request: Request) -> Response:
        data = self._calendar_data(request)
        moving = None
        raw_move = request.query_params.get("move")
        if raw_move and not self.read_only:
            moving = self.m.get(_parse_id(raw_move))
            if moving.status is not UploadStatus.SCHEDULED:
                moving = None
        weeks = [data["days"][i : i + 7] for i in range(0, len(data["days"]), 7)]
        cookie, _ = self._csrf_cookie(request)
        pick = None
        if moving is not None:
            pick = (
                f'<form method="post" action="{escape(self._base(request))}/schedules/'
                f'{moving.id}/reschedule" class="pick"><input type="hidden" name="csrf" '
                f'value="{escape(self.guard.csrf_token(cookie))}"><input type="hidden" '
                f'name="version" value="{form_version(moving)}"><input type="hidden" '
                'name="slot" value="{at}"><button class="st st-free" '
                f'title="move #{moving.id} here">free &ndash; move here</button></form>'
            )
        base = str(escape(self._base(request)))
        limit = MONTH_CELL_SLOTS if data["view"] == "month" else None
        week_link = (
            f"{base}/calendar?{urlencode({'channel': data['channel'], 'view': 'week'})}&date="
        )
        cells = {
            d.day: Markup(_day_html(d, base, pick, limit, week_link))  # noqa: S704
            for d in data["days"]
        }
        return self.render(
            request,
            "calendar.html",
            moving=moving,
            weeks=weeks,
            cells=cells,
            nav="calendar",
            **data,
        )

    def calendar_api(self, request: Request) -> Response:
        data = self._calendar_data(request)
        days: list[CalendarDay] = data["days"]
        return JSONResponse(
            _plain(
                {
                    "channel": data["channel"],
                    "timezone": self.m.config.timezone,
                    "view": data["view"],
                    "start": data["start"],
                    "end": data["end"],
                    "days": [
                        {
                            "date": d.day,
                            "counts": {k.value: v for k, v in d.counts.items()},
                            "slots": [
                                {
                                    "at": s.at,
                                    "local": s.local,
                                    "types": [t.value for t in s.types],
                                    "free": s.free,
                                    "bookable": s.bookable,
                                    "schedules": [
                                        {
                                            "id": e.id,
                                            "video_type": e.video_type,
                                            "status": e.status,
                                            "title": e.title,
                                            "progress": e.progress,
                                            "next_attempt_at": e.next_attempt_at,
                                        }
                                        for e in s.entries
                                    ],
                                }
                                for s in d.slots
                            ],
                        }
                        for d in days
                    ],
                }
            )
        )

    # -- quota --------------------------------------------------------------------------------

    def _quota_data(self, request: Request) -> dict[str, Any]:
        project = request.query_params.get("project") or None
        cfg = self.m.config
        today = quota_date_of(self.m.now(), cfg.quota_timezone)
        start, end = today - timedelta(days=_QUOTA_DAYS), today + timedelta(days=_QUOTA_DAYS)
        rows = self.m.quota_usage(start, end, api_project=project)
        grouped: dict[str, dict[str, list[QuotaDayUsage]]] = {}
        for r in rows:
            grouped.setdefault(r.api_project, {}).setdefault(r.bucket, []).append(r)
        return {
            "today": today,
            "start": start,
            "end": end,
            "project": project,
            "projects": self.m.known_names().api_projects,
            "grouped": grouped,
            "rows": rows,
            "quota_timezone": cfg.quota_timezone,
        }

    def quota_page(self, request: Request) -> Response:
        return self.render(request, "quota.html", nav="quota", **self._quota_data(request))

    def quota_api(self, request: Request) -> Response:
        data = self._quota_data(request)
        return JSONResponse(
            _plain(
                {
                    "quota_timezone": data["quota_timezone"],
                    "today": data["today"],
                    "days": [
                        {
                            "api_project": r.api_project,
                            "quota_date": r.quota_date,
                            "bucket": r.bucket,
                            "reserved": r.reserved,
                            "used": r.used,
                            "limit": r.limit,
                        }
                        for r in data["rows"]
                    ],
                }
            )
        )

    # -- attention ----------------------------------------------------------------------------

    def _attention_data(self) -> dict[str, Any]:
        att = self.m.attention(limit=50)
        zone = self.m.config.zone
        sections = [
            (kind, [(s, redact(explain(kind, s, zone))) for s in getattr(att, kind)])
            for kind in PROBLEM_KINDS
        ]
        runs = self.m.processor_runs(limit=50)
        unauthorized = [r for r in runs if r.outcome == "unauthorized"]
        # Changes of plan after upload whose API call is in flight or whose answer was lost.
        pending = [
            (c, redact(describe(c.kind, c.target, c.previous)))
            for c in self.m.pending_video_changes(limit=50)
        ]
        return {"att": att, "sections": sections, "unauthorized": unauthorized, "pending": pending}

    def attention_page(self, request: Request) -> Response:
        return self.render(request, "attention.html", nav="attention", **self._attention_data())

    def attention_api(self, request: Request) -> Response:
        data = self._attention_data()
        att = data["att"]
        body: dict[str, Any] = {
            "now": att.now,
            "clear": att.is_clear,
            "failed_total": att.failed_total,
            "in_flight": [schedule_json(s) for s in att.in_flight],
            "due": [schedule_json(s) for s in att.due],
            "unauthorized_runs": [_run_json(r) for r in data["unauthorized"]],
            "paused_channels": [
                {
                    "channel": p.channel,
                    "paused_at": p.paused_at,
                    "reason": redact(p.reason or ""),
                    "command": p.command,
                }
                for p in att.paused_channels
            ],
        }
        for kind, items in data["sections"]:
            body[kind] = [dict(schedule_json(s), why=why) for s, why in items]
        body["pending_changes"] = [_change_json(c, what) for c, what in data["pending"]]
        return JSONResponse(_plain(body))

    # -- schedule -----------------------------------------------------------------------------

    def _history(self, s: ScheduledVideo) -> list[TimelineEvent]:
        """The schedule's timeline with its quota-ledger calls, oldest first."""
        return self.m.timeline(s.id, api_calls=True)

    def _schedule_page(
        self, request: Request, sid: int, *, error: str | None = None, status: int = 200
    ) -> Response:
        s = self.m.get(sid)
        done = _DONE_MESSAGES.get(request.query_params.get("done", ""))
        local_default = s.scheduled_publish_time.astimezone(self.m.config.zone)
        return self.render(
            request,
            "schedule.html",
            status=status,
            s=s,
            history=self._history(s),
            error=error,
            done=None if error else done,
            local_default=local_default.strftime("%Y-%m-%dT%H:%M"),
            nav="",
        )

    def schedule_page(self, request: Request) -> Response:
        return self._schedule_page(request, _parse_id(request.path_params["schedule_id"]))

    def schedule_api(self, request: Request) -> Response:
        s = self.m.get(_parse_id(request.path_params["schedule_id"]))
        body = schedule_json(s)
        events = self._history(s)
        body["timeline"] = [
            {
                "at": e.at.isoformat(),
                "kind": e.kind,
                "actor": e.actor,
                "detail": redact(e.detail) or None,
            }
            for e in events
        ]
        # The older shape, kept for existing readers: when and what only.
        body["history"] = [{"at": e.at.isoformat(), "event": e.kind} for e in events]
        return JSONResponse(body)

    # -- runs ---------------------------------------------------------------------------------

    def runs_page(self, request: Request) -> Response:
        runs = self.m.processor_runs(limit=_RUNS_LIMIT)
        now = self.m.now()
        bars: list[dict[str, Any]] = []
        if runs:
            lo = min(r.started_at for r in runs)
            ends = [r.finished_at or now for r in runs]
            hi = max(*ends, lo + timedelta(seconds=1))
            span = (hi - lo).total_seconds()
            for r in runs:
                x = (r.started_at - lo).total_seconds() / span * 1000
                w = ((r.finished_at or now) - r.started_at).total_seconds() / span * 1000
                bars.append({"run": r, "x": round(x, 1), "w": round(max(w, 2.0), 1)})
        return self.render(request, "runs.html", runs=runs, bars=bars, nav="runs", now=now)

    def runs_api(self, request: Request) -> Response:
        runs = self.m.processor_runs(limit=_RUNS_LIMIT)
        return JSONResponse({"runs": [_run_json(r) for r in runs]})

    # -- actions ------------------------------------------------------------------------------

    def do_cancel(self, request: Request, sid: int, form: FormData) -> ScheduledVideo:
        return self.m.cancel(sid, requested_by="web")

    def do_reschedule(self, request: Request, sid: int, form: FormData) -> ScheduledVideo:
        when = _parse_time(form.get("slot") or form.get("new_time"), self.m)
        if when is None:
            raise _Problem(400, "Pick a free slot or give an exact time.")
        return self.m.reschedule(sid, when, requested_by="web")

    def do_retry(self, request: Request, sid: int, form: FormData) -> ScheduledVideo:
        return self.m.retry_failed(
            sid, new_time=_parse_time(form.get("new_time"), self.m), requested_by="web"
        )

    # -- login --------------------------------------------------------------------------------

    def login_page(self, request: Request) -> Response:
        return self.render(
            request, "login.html", next=_safe_next(request.query_params.get("next")), nav=""
        )

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not self.guard.csrf_ok(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            return self.problem(request, 403, "The form's CSRF token is missing or wrong.")
        given = form.get("token")
        if (
            self.guard.token is None
            or not isinstance(given, str)
            or not self.guard.check_token(given)
        ):
            return self.render(
                request,
                "login.html",
                status=401,
                next=_safe_next(form.get("next")),
                nav="",
                error="Wrong token.",
            )
        target = _safe_next(form.get("next"))
        response = RedirectResponse(f"{self._base(request)}{target}", 303)
        self._set_cookie(request, response, AUTH_COOKIE, self.guard.login_cookie())
        return response

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        if not self.guard.csrf_ok(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            return self.problem(request, 403, "The form's CSRF token is missing or wrong.")
        response = RedirectResponse(f"{self._base(request)}/login", 303)
        response.delete_cookie(AUTH_COOKIE, path=self._base(request) or "/")
        return response

    def metrics_page(self, request: Request) -> Response:
        from .metrics import CONTENT_TYPE, render_metrics

        return Response(render_metrics(self.m), media_type=CONTENT_TYPE)

    def home(self, request: Request) -> Response:
        return RedirectResponse(f"{self._base(request)}/calendar", 303)


def _day_html(
    day: CalendarDay, base: str, pick: str | None, limit: int | None, week_link: str
) -> str:
    """A calendar cell: every slot, or (month view) the first ``limit`` slots and a summary of
    the rest by status with a link to that day's week, where every slot is listed."""
    shown = day.slots if limit is None else day.slots[:limit]
    html = "".join(_slot_html(s, base, pick) for s in shown)
    if len(shown) == len(day.slots):
        return html
    hidden = day.slots[len(shown) :]
    counts: dict[str, int] = {}
    free = 0
    for slot in hidden:
        free += slot.free
        for e in slot.entries:
            counts[e.status] = counts.get(e.status, 0) + 1
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    if free:
        parts.append(f"{free} free")
    return (
        f'{html}<div class="more"><a href="{week_link}{day.day.isoformat()}">'
        f"+{len(hidden)} more slots: {', '.join(parts)}</a></div>"
    )


def _slot_html(s: CalendarSlot, base: str, pick: str | None) -> str:
    """One calendar slot as HTML (built here rather than in the template: a month may show
    thousands; every value from the database passes through ``escape``). The statuses and
    types are StrEnums: formatting them gives their value."""
    at = s.at.isoformat()
    hm = f"{s.local:%H:%M}"
    parts = [
        f'<div class="slot{" free" if s.free else ""}" data-at="{at}" data-local="{hm}">'
        f'<span class="time">{hm}</span>'
    ]
    if s.types:
        parts.append(f'<span class="types">{"".join(t[0] for t in s.types)}</span>')
    for e in s.entries:
        parts.append(
            f'<a class="st st-{e.status}" href="{base}/schedules/{e.id}" data-id="{e.id}" '
            f'title="#{e.id} {e.video_type} {e.status}">'
        )
        if e.bytes_total and e.status is UploadStatus.UPLOADING:
            pct = round(min(1.0, e.bytes_uploaded / e.bytes_total) * 100)
            parts.append(f'<progress max="100" value="{pct}">{pct}%</progress> {pct}% ')
        parts.append(f"{escape(e.title) if e.title else f'#{e.id}'}</a>")
    if s.free:
        if pick is not None and s.bookable:
            parts.append(pick.replace("{at}", at))
        else:
            parts.append('<span class="st st-free">free</span>')
    parts.append("</div>")
    return "".join(parts)


def form_version(s: ScheduledVideo) -> str:
    """What an action form carries to detect that the schedule changed since it was shown."""
    state = "|".join(
        str(v)
        for v in (
            s.updated_at.isoformat(),
            s.status.value,
            s.scheduled_publish_time.isoformat(),
            s.attempts,
            s.next_attempt_at,
            s.lease_owner,
        )
    )
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def _safe_next(value: object) -> str:
    """A local path to go back to after login (never another site)."""
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) < 512
    ):
        return value
    return "/calendar"


def _parse_id(raw: object) -> int:
    text = str(raw)
    if not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= MAX_SCHEDULE_ID:
        raise ScheduleNotFoundError(text[:32])
    return int(text)


def _parse_date(raw: str | None, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _Problem(400, "date must be YYYY-MM-DD") from None


def _parse_time(raw: object, manager: ScheduleManager) -> datetime | None:
    """An ISO 8601 instant; without an offset it is a wall-clock time in the channel zone."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 64:
        raise _Problem(400, "the time must be text like 2026-05-01T18:00")
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _Problem(
            400, f"{raw!r} is not a time like 2026-05-01T18:00 (channel time zone)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=manager.config.zone)
    return value.astimezone(UTC)


def create_app(
    manager: ScheduleManager,
    *,
    read_only: bool = False,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    secret: str | bytes | None = None,
    metrics: bool = True,
    title: str = "langflix-scheduler",
) -> Starlette:
    """The dashboard as an ASGI app (Starlette) for ``manager``.

    Args:
        manager: the schedule manager whose database is shown (and changed, unless
            ``read_only``). The app does not close it.
        read_only: no action forms; every POST is refused (403).
        token: require this bearer token (``Authorization: Bearer ...``, or a login form
            that sets a cookie holding an HMAC of it).
        basic_auth: require HTTP basic auth with this ``(user, password)``.
        secret: key for CSRF tokens and the login cookie (default: random per app, so forms and
            logins do not survive a restart and several workers need one given explicitly).
        metrics: serve ``/metrics`` (Prometheus text format).
        title: shown in the page header.

    Mount it in FastAPI or Starlette with ``app.mount("/scheduler", create_app(manager))``.
    """
    guard = Guard(secret=secret, token=token, basic_auth=basic_auth)
    d = _Dashboard(manager, read_only=read_only, guard=guard, metrics=metrics, title=title)
    routes = [
        Route("/", d.page(d.home)),
        Route("/calendar", d.page(d.calendar_page)),
        Route("/api/calendar", d.page(d.calendar_api)),
        Route("/quota", d.page(d.quota_page)),
        Route("/api/quota", d.page(d.quota_api)),
        Route("/attention", d.page(d.attention_page)),
        Route("/api/attention", d.page(d.attention_api)),
        Route("/runs", d.page(d.runs_page)),
        Route("/api/runs", d.page(d.runs_api)),
        Route("/schedules/{schedule_id}", d.page(d.schedule_page)),
        Route("/api/schedules/{schedule_id}", d.page(d.schedule_api)),
        Route(
            "/schedules/{schedule_id}/cancel", d.action(d.do_cancel, "cancelled"), methods=["POST"]
        ),
        Route(
            "/schedules/{schedule_id}/reschedule",
            d.action(d.do_reschedule, "rescheduled"),
            methods=["POST"],
        ),
        Route("/schedules/{schedule_id}/retry", d.action(d.do_retry, "retried"), methods=["POST"]),
        Route("/login", d.login_page, methods=["GET"]),
        Route("/login", d.login, methods=["POST"]),
        Route("/logout", d.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    if metrics:
        routes.append(Route("/metrics", d.page(d.metrics_page)))
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.dashboard = d
    return app
