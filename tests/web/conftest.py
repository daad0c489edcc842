"""Fixtures for the dashboard's tests: a manager with booked videos and a test client."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")

from starlette.testclient import TestClient

from langflix_scheduler.domain import ScheduledVideo, VideoType
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.web import create_app

ZONE = "Asia/Seoul"
SECRET = "test-secret-" + "x" * 20
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def version_of(html: str) -> str:
    match = _VERSION.search(html)
    assert match, "no version field on the page"
    return match.group(1)


@dataclass
class Site:
    manager: ScheduleManager
    client: TestClient
    booked: list[ScheduledVideo]
    video_file: Callable[..., Path]

    def form(self, path: str) -> tuple[str, str]:
        """GET ``path``; the CSRF token and the version of its first action form."""
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        return csrf_of(page.text), version_of(page.text)

    def post(self, path: str, data: dict[str, Any]) -> Any:
        return self.client.post(path, data=data, follow_redirects=False)


@pytest.fixture
def web_manager(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(timezone=ZONE)


@pytest.fixture
def site(web_manager: ScheduleManager, video_file: Callable[..., Path]) -> Iterator[Site]:
    booked = [
        web_manager.schedule_video(
            str(video_file()), VideoType.FINAL, metadata={"title": f'Tom & "Jerry" {i}'}
        )
        for i in range(3)
    ]
    booked.append(
        web_manager.schedule_video(
            str(video_file()), VideoType.SHORT, metadata={"title": "short one"}
        )
    )
    app = create_app(web_manager, secret=SECRET)
    with TestClient(app, headers={"accept": "text/html"}) as client:
        yield Site(web_manager, client, booked, video_file)
