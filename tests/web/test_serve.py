"""``langflix-scheduler web``: safe binds, a real HTTP server, and the core never importing web."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from langflix_scheduler.errors import ConfigurationError
from langflix_scheduler.web.serve import check_bind, is_loopback, parse_basic_auth


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langflix_scheduler", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_bind_rules() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("::")
    assert not is_loopback("example.org")
    check_bind("127.0.0.1", token=None, basic_auth=None)
    check_bind("0.0.0.0", token="a-long-token", basic_auth=None)
    check_bind("0.0.0.0", token=None, basic_auth=("u", "p"))
    with pytest.raises(ConfigurationError, match="--token"):
        check_bind("0.0.0.0", token=None, basic_auth=None)
    assert parse_basic_auth("ops:pw:with:colons") == ("ops", "pw:with:colons")
    for bad in ("ops", ":pw", "ops:"):
        with pytest.raises(ConfigurationError):
            parse_basic_auth(bad)


def test_web_command_refuses_a_public_bind_without_credentials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert cli("--database-url", url, "init-db").returncode == 0
    refused = cli("--database-url", url, "web", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 1
    assert "--token" in refused.stderr
    short = cli("--database-url", url, "web", "--token", "short")
    assert short.returncode == 1
    assert "at least 8" in short.stderr


def test_web_command_serves_the_dashboard(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert cli("--database-url", url, "init-db").returncode == 0
    port = free_port()
    token = "serve-test-token-1"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langflix_scheduler",
            "--database-url",
            url,
            "web",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LANGFLIX_SCHEDULER_WEB_TOKEN": token},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=2)
            except urllib.error.HTTPError as exc:
                status = exc.code
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert status == 401  # the token from the environment is required
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/calendar", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert "server" not in {k.lower() for k in resp.headers}
            assert token not in resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()


def test_core_library_never_imports_the_web_package() -> None:
    code = (
        "import sys\n"
        "import langflix_scheduler, langflix_scheduler.manager, langflix_scheduler.processor\n"
        "import langflix_scheduler.cli, langflix_scheduler.reports, langflix_scheduler.overview\n"
        "from langflix_scheduler import ScheduleManager, UploadProcessor\n"
        "bad = [m for m in sys.modules if m.startswith('langflix_scheduler.web')\n"
        "       or m.split('.')[0] in ('starlette', 'jinja2', 'prometheus_client', 'uvicorn')]\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
