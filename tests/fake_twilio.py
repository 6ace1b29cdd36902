"""A small Twilio-compatible REST server on loopback, for tests that run real processes.

It records every request, answers like Twilio's 2010 API for calls, and can hold requests
to `Calls.json` until released (to kill a worker in the middle of one).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

ACCOUNT = "AC" + "e" * 32


class FakeTwilio(ThreadingHTTPServer):
    """Records REST requests; answers like Twilio's 2010 API for calls."""

    daemon_threads = True

    def __init__(self, port):
        self.requests: list[tuple[str, str, dict]] = []
        self.cond = threading.Condition()
        self.hold_calls = threading.Event()  # set: Calls.json requests wait for `release`
        self.release = threading.Event()
        super().__init__(("127.0.0.1", port), _Handler)

    def calls_created(self) -> list[dict]:
        return [f for _, p, f in self.requests if p.rstrip("/").endswith("/Calls.json")]

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; REST requests seen: {self.requests}")
                self.cond.wait(left)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        sid = "CA" + uuid.uuid4().hex
        body = {
            "sid": sid,
            "status": "queued",
            "account_sid": ACCOUNT,
            "to": form.get("To"),
            "from": form.get("From"),
        }
        if self.path.rstrip("/").endswith("/Calls.json"):
            code = 201
        else:
            code = 200
            body["sid"] = self.path.rsplit("/", 1)[-1].removesuffix(".json")
            body["status"] = form.get("Status", "in-progress")
        with self.server.cond:
            self.server.requests.append(("POST", self.path, dict(form, _sid=body["sid"])))
            self.server.cond.notify_all()
        if code == 201 and self.server.hold_calls.is_set():
            self.server.release.wait(60)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass
