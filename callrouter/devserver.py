"""`make run`: the web service (gunicorn) and an RQ worker on the embedded defaults.

Starts the embedded Redis when `REDIS_URL` is unset, checks the directory and migrates the
database once, then runs `gunicorn app:app` and `python worker.py` side by side until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from callrouter import create_app, redis_conn
from callrouter.settings import Settings, from_env


def main() -> int:
    settings = from_env()
    bind = os.environ.get("CALLROUTER_BIND", "127.0.0.1:8000")
    env = dict(os.environ)
    started_redis = False
    if settings.redis_url is None:
        started_redis = not _redis_running(settings.instance_path)
        redis_conn.ensure_embedded(settings.instance_path)
    sandbox_note = ""
    if not os.environ.get("TWILIO_ACCOUNT_SID"):
        # No Twilio account: the sandbox is the telephone network (`/sandbox` in a browser).
        sandbox_note = _start_sandbox(settings, env)
    else:
        create_app()  # checks the directory and migrates the database before the children
    procs = _start_children(bind, env)
    print(
        f"callrouter: web on http://{bind} (webhooks under /voice), worker running."
        f"{sandbox_note} Ctrl-C stops all.",
        flush=True,
    )

    def stop(*_):
        _terminate(procs)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        stop()
        _reap(procs)
        if started_redis:
            redis_conn.stop_embedded(settings.instance_path)
    return max((p.returncode or 0) for p in procs)


def _start_sandbox(settings: Settings, env: dict) -> str:
    """Serve the sandbox beside the service and point `env` (the children's environment)
    at it; returns the sentence that tells where its phones are."""
    from werkzeug.serving import make_server

    from callrouter.sandbox.script import SANDBOX_ACCOUNT

    sandbox_bind = os.environ.get("CALLROUTER_SANDBOX_BIND", "127.0.0.1:8001")
    host, port = sandbox_bind.rsplit(":", 1)
    env.update(
        TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT,
        TWILIO_API_BASE_URL=f"http://{sandbox_bind}/sandbox/api",
    )
    server = make_server(host, int(port), sandbox_app(settings, env), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f" Sandbox phones: http://{sandbox_bind}/sandbox"


def sandbox_app(settings: Settings, env: dict):
    """The sandbox's web application (its phones' page and the REST subset) for the service
    that `env` configures; builds that service once (checks the directory, migrates)."""
    from callrouter.sandbox.script import SANDBOX_ACCOUNT
    from callrouter.sandbox.server import create_sandbox_app, service_call_log

    # Every run starts on real time; a trainer may move the clock forward from the page.
    (settings.instance_path / "sandbox-clock").unlink(missing_ok=True)
    service = create_app(environ=env)
    svc = service.extensions["callrouter"]

    def after_clock():
        from callrouter import callbacks

        svc.queue("default").enqueue(callbacks.sweep)

    return create_sandbox_app(
        settings.public_base_url,
        svc.settings.twilio_auth_token,
        SANDBOX_ACCOUNT,
        svc.directory,
        clock_file=svc.settings.instance_path / "sandbox-clock",
        after_clock=after_clock,
        call_log=service_call_log(svc),
    )


def _start_children(bind: str, env: dict) -> list[subprocess.Popen]:
    """The web service (gunicorn) and the RQ worker."""
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "app:app",
                "--bind",
                bind,
                "--workers",
                os.environ.get("WEB_CONCURRENCY", "2"),
                "--access-logfile",
                "-",
            ],
            env=env,
        ),
        subprocess.Popen([sys.executable, "worker.py"], env=env),
    ]


def _terminate(procs: list[subprocess.Popen]) -> None:
    """Ask every child still running to stop (SIGTERM)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)


def _reap(procs: list[subprocess.Popen]) -> None:
    """Wait for every child to exit; one that takes longer than 15 s is killed."""
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def _redis_running(instance) -> bool:
    try:
        return bool(
            redis_conn.connect(f"unix://{redis_conn.socket_path(instance)}", instance).ping()
        )
    except Exception:  # not running
        return False


if __name__ == "__main__":
    sys.exit(main())
