"""Real service processes for end-to-end tests: `gunicorn app:app` and `python worker.py`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**values: str) -> dict:
    """The process environment without any callrouter, Twilio, Redis, database or metrics
    setting, plus `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO", "CALLROUTER", "REDIS", "DATABASE", "PROMETHEUS"))
    }
    env.update(values)
    return env


class Stack:
    """Starts the web service and workers; `stop()` ends them all (and closes the log)."""

    def __init__(self, env: dict, log_path: Path):
        self.env = env
        self.log_path = log_path
        self.log = log_path.open("w")
        self.procs: list[subprocess.Popen] = []

    def web(self, port: int, workers: int = 2, extra: tuple[str, ...] = ()) -> subprocess.Popen:
        p = self._start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "app:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                *extra,
            ]
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                return p
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise AssertionError(self.log_path.read_text()[-3000:]) from None
                time.sleep(0.2)

    def worker(self, new_session: bool = False) -> subprocess.Popen:
        return self._start([sys.executable, "worker.py"], new_session=new_session)

    def _start(self, args: list[str], new_session: bool = False) -> subprocess.Popen:
        p = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.log.close()
