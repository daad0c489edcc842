"""The CLI's progress-displaying uploader keeps the inner uploader's ``probe_session``, so the
processor still asks stored sessions before giving a schedule up when progress is shown."""

from __future__ import annotations

from typing import Any

import pytest

from langflix_scheduler.cli._progress import DisplayingUploader
from langflix_scheduler.youtube.uploader import DryRunUploader, SessionState


def test_probe_is_delegated_to_the_inner_uploader() -> None:
    shown = DisplayingUploader(DryRunUploader(), display=None)  # type: ignore[arg-type]
    answer = shown.probe_session("dryrun://upload/x", "v.mp4")
    assert answer.state is SessionState.INCOMPLETE


def test_an_inner_uploader_without_probe_says_so() -> None:
    class Plain:
        def upload(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("not called")

    shown = DisplayingUploader(Plain(), display=None)  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="cannot ask"):
        shown.probe_session("https://upload/x", "v.mp4")
