"""The deployment files: the Dockerfile, compose.yaml and the proxy's settings.

No Docker engine runs where these tests run, so they read the files instead: each must parse,
hold together (the proxy's upstreams are the web services, every COPY source exists), start
the processes the README documents, and give the service settings it accepts.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest
import yaml

from callrouter.sandbox import SANDBOX_ACCOUNT
from callrouter.settings import from_env

from procs import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def exec_form(steps, word: str) -> list[str]:
    (args,) = [a for w, a in steps if w == word]
    return json.loads(args)


def test_the_image():
    steps = final_stage()
    assert re.match(r"python:3\.1[1-9]-slim", steps[0][1])
    users = [a for w, a in steps if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert exec_form(steps, "ENTRYPOINT") == ["tini", "--"]
    (health,) = [a for w, a in steps if w == "HEALTHCHECK"]
    assert "/readyz" in health
    for word, args in dockerfile():
        if word == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "instance", "node_modules"} <= set(ignored)


def test_the_images_command_is_the_documented_one():
    documented = re.search(r"The image's command is `([^`]+)`", README)
    assert documented, "README: the sentence with the image's command"
    assert " ".join(exec_form(final_stage(), "CMD")) == documented.group(1)
    assert exec_form(final_stage(), "CMD")[:2] == ["gunicorn", "app:app"]


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _interpolate(value: str, dotenv: dict) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against `dotenv`."""

    def one(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if dotenv.get(name):
            return dotenv[name]
        if op == ":?":
            raise AssertionError(f"{name} must be set: {arg}")
        return arg or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_compose_runs_every_process_of_the_readme():
    services = compose()["services"]
    assert {"postgres", "redis", "web-1", "web-2", "worker-1", "worker-2", "sandbox"} <= set(
        services
    )
    for web in ("web-1", "web-2"):
        assert "command" not in services[web]  # the image's own: gunicorn app:app
        assert services[web]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    for worker in ("worker-1", "worker-2"):
        assert services[worker]["command"] == ["python", "worker.py"]
    migrate = " ".join(services["migrate"]["command"])
    assert migrate == "flask --app app db upgrade" and migrate in README
    assert services["sandbox"]["command"] == ["python", "-m", "callrouter.sandbox"]
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis  # RQ's jobs survive a restart of Redis
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstreams = set(re.findall(r"server (\S+):8000", nginx))
    assert upstreams == {"web-1", "web-2"}


@pytest.mark.parametrize("service", ["web-1", "worker-2", "migrate", "sandbox"])
def test_compose_gives_settings_the_service_accepts(service):
    dotenv = {
        name: secrets.token_urlsafe(32)
        for name in ("SECRET_KEY", "TWILIO_AUTH_TOKEN", "METRICS_TOKEN", "POSTGRES_PASSWORD")
    }
    env = {
        k: _interpolate(str(v), dotenv)
        for k, v in compose()["services"][service]["environment"].items()
    }
    settings = from_env(env)
    assert settings.production and settings.metrics_token == dotenv["METRICS_TOKEN"]
    assert settings.database_url.startswith("postgresql+psycopg://callrouter:")
    assert settings.redis_url == "redis://redis:6379/0" and settings.log_format == "json"
    assert settings.twilio_account_sid == SANDBOX_ACCOUNT and not settings.auto_migrate
    assert settings.twilio_api_base_url == "http://sandbox:8001/sandbox/api"
    with pytest.raises(AssertionError, match="SECRET_KEY"):
        _interpolate(compose()["services"][service]["environment"]["SECRET_KEY"], {})


def test_the_sandbox_alone(tmp_path, lines_file):
    """`python -m callrouter.sandbox`: the phones' page on its port; never a real account."""
    env = clean_env(
        CALLROUTER_INSTANCE=str(tmp_path / "instance"),
        CALLROUTER_LINES=str(lines_file),
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
    )
    refused = subprocess.run(
        [sys.executable, "-m", "callrouter.sandbox"], cwd=ROOT, env=env, capture_output=True
    )
    assert refused.returncode == 2 and b"real account" in refused.stderr
    port = free_port()
    del env["TWILIO_ACCOUNT_SID"]
    env["CALLROUTER_SANDBOX_BIND"] = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "callrouter.sandbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urlopen(f"http://127.0.0.1:{port}/sandbox", timeout=2) as resp:
                    assert resp.status == 200 and b"<html" in resp.read().lower()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        from callrouter import redis_conn

        redis_conn.stop_embedded(tmp_path / "instance")
