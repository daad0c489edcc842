"""The web dashboard: ``create_app(manager)`` builds an ASGI app (needs the ``[web]`` extra).

See ``docs/web.md``. The core library never imports this package.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
