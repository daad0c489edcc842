"""CLI start-up time: run commands as subprocesses N times, print median wall times as JSON.

    python benchmarks/bench_cli.py [--runs 15] [--database-url sqlite:////tmp/x.db]

Measures what a person or a cron job waits for: ``--help``, ``--version`` and ``list`` on a
SQLite database (created once with ``init-db`` in a temporary directory unless one is given).
Not a timed test: numbers depend on the machine; compare before/after on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "--version": ["--version"],
    "list": ["list"],
}


def _time_once(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "langflix_scheduler", *args],
        capture_output=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{args} exited {proc.returncode}: {proc.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Runs per command (median taken).")
    parser.add_argument("--database-url", help="Database for `list` (default: a temp SQLite).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFLIX_SCHEDULER_")}
        env["LANGFLIX_SCHEDULER_DATABASE_URL"] = url
        _time_once(["init-db"], env)
        _time_once(["list"], env)  # warm the file cache and the bytecode
        result: dict[str, dict[str, float]] = {}
        for name, cmd in COMMANDS.items():
            times = [_time_once(cmd, env) for _ in range(args.runs)]
            result[name] = {
                "median_s": round(statistics.median(times), 4),
                "min_s": round(min(times), 4),
                "max_s": round(max(times), 4),
            }
    print(json.dumps({"runs": args.runs, "python": sys.version.split()[0], **result}, indent=2))


if __name__ == "__main__":
    main()
