"""``langflix-scheduler`` command line: parse, call the library, render. Nothing else.

Configuration precedence: flags > environment (``LANGFLIX_SCHEDULER_*``) > config file
(``--config``, default ``./langflix-scheduler.toml`` when present) > defaults.

Exit codes: 0 ok; 1 a problem a retry will not fix (the message says what to do: bad input, no
or an out-of-date schema, not a database, a missing directory, permissions, credentials); 2 a
usage error; 3 a condition a retry can fix (lock or database timeout, unreachable server, lost
connection, unknown commit outcome); 130 interrupted. :mod:`._errors` maps the library's
:func:`~langflix_scheduler.diagnosis.diagnose` to them.

Modules: ``_app`` (the group, global options anywhere, :func:`main`), ``_state`` (resolved
options, the manager, error translation), ``_parse``, ``_render``, ``_errors``, one ``_cmd_*``
module per command group (booking, reading, quota, auth/init-db, process, status, demo),
``_progress`` (upload progress display) and ``_demo`` (the offline demo). The rules (what is
due, what needs a look, the dry-run plan, default titles, channel days) are library API; the
CLI only renders them. Heavy libraries are imported by the commands that need them.
"""

from ._app import cli, main

__all__ = ["cli", "main"]
