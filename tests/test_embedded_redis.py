"""The embedded Redis is a real server shared by every process using the same instance/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from callrouter import redis_conn

ROOT = Path(__file__).resolve().parent.parent


def test_two_processes_share_one_embedded_server(tmp_path):
    """A second process finds the server the first one started; data written is seen by both."""
    instance = tmp_path / "instance"
    try:
        code = (
            "import sys; from pathlib import Path; from callrouter import redis_conn; "
            "r = redis_conn.connect(None, Path(sys.argv[1])); r.set('k', 'from-child'); "
            "print(redis_conn.pid_of(Path(sys.argv[1])))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(instance)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        child_pid = int(out.stdout.strip())
        client = redis_conn.connect(None, instance)
        assert client.get("k") == b"from-child"
        assert redis_conn.pid_of(instance) == child_pid
        assert client.info("server")["redis_version"].startswith("6.")
    finally:
        redis_conn.stop_embedded(instance)
    try:
        redis.Redis(
            unix_socket_path=str(redis_conn.socket_path(instance)), socket_connect_timeout=0.5
        ).ping()
        stopped = False
    except (redis.ConnectionError, OSError):
        stopped = True
    assert stopped


def test_long_instance_path_uses_short_socket(tmp_path):
    """An instance path too long for a Unix socket gets a short socket path elsewhere."""
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    path = redis_conn.socket_path(deep)
    assert len(str(path)) <= 100 and path != deep / "redis.sock"
