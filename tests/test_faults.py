"""The load-and-fault suite (bench/faults.py), short: on PostgreSQL where the machine has one
(TEST_DATABASE_URL), else on SQLite, always with a Redis server that it stops and starts.

A run with every fault loses nothing and dials nobody twice; a run in which a callback
request is deleted and one leg is placed twice must say so and fail. (The full run of 200
calls with Redis down for 20 s is in the README.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["--calls", "24", "--rate", "1.5", "--redis-down", "4"]


def _suite(*extra: str) -> tuple[int, str, str]:
    database = os.environ.get("TEST_DATABASE_URL") or "sqlite"
    done = subprocess.run(
        [sys.executable, "bench/faults.py", *SHORT, "--database-url", database, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout, done.stderr


def _summary(out: str) -> dict[str, int]:
    """The first table's numbers by column."""
    header, _, values = [line for line in out.splitlines() if line.startswith("|")][:3]
    names = [c.strip() for c in header.strip("|").split("|")]
    numbers = [int(c) for c in values.strip("|").split("|")]
    return dict(zip(names, numbers, strict=True))


def test_nothing_is_lost_under_faults():
    code, out, err = _suite()
    assert code == 0, (out, err[-3000:])
    summary = _summary(out)
    assert summary["calls placed"] == 24 and summary["completed"] == 24
    assert summary["lost"] == 0 and summary["duplicate dials"] == 0
    assert summary["application errors heard"] == 0
    for phase in ("gunicorn worker SIGKILL", "RQ worker SIGKILL", "Redis stopped"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {phase}"))
        assert int(row.split("|")[3]) > 0, f"no webhooks during {phase}"


def test_the_suite_fails_when_a_row_is_lost_or_a_leg_dialled_twice():
    code, out, err = _suite("--sabotage", "lose-callback,dial-twice")
    assert code == 1, out
    summary = _summary(out)
    assert summary["lost"] >= 1 and summary["duplicate dials"] == 1
    assert re.search(r"closed-line call CA\w+: 0 callbacks", out), out
