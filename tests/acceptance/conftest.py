"""Run the CLI as a real subprocess against a database of the parametrised engine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ._cli import CliResult

CLI_TIMEOUT_SECONDS = 120


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: the test database, no config file around."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFLIX_SCHEDULER_")}
    env["LANGFLIX_SCHEDULER_DATABASE_URL"] = db_url
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def run_cli(cli_env: dict[str, str], tmp_path: Path) -> Callable[..., CliResult]:
    """``run_cli("list", "--status", "scheduled")`` -> CliResult (cwd: an empty temp dir)."""

    def run(*args: str, env: dict[str, str] | None = None, check: bool = False) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "langflix_scheduler", *args],
            capture_output=True,
            text=True,
            env={**cli_env, **(env or {})},
            cwd=tmp_path,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
        if check and result.code != 0:
            raise AssertionError(f"{args} exited {result.code}: {result.stderr}")
        return result

    return run
