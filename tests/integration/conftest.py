"""Fixtures of the integration tests (the database fixtures are in ``tests/conftest.py``).

The YouTube fixtures live in :mod:`tests.integration._youtube_fixtures` with their helpers; they
are registered here once instead of star-imported by each test module.
"""

from __future__ import annotations

from ._youtube_fixtures import (  # noqa: F401 - pytest fixtures
    backend,
    close_uploaders,
    thumbnail,
    youtube_fake,
    youtube_video,
)
