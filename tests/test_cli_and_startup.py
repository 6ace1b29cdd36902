"""`lines check` and start-up: one clear error with file, line and key path; refusal to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from callrouter import create_app

ROOT = Path(__file__).resolve().parent.parent
GOOD = (ROOT / "config" / "lines.yaml").read_text(encoding="utf-8")

# Each case: (name, how to break the shipped file, expected key path, expected words)
CASES = [
    (
        "invalid-number",
        ('"+31881001002"', '"+31 12"'),
        "organisations[0].lines[0].numbers[1]",
        "not a valid phone number",
    ),
    (
        "duplicate-digit",
        (
            "        digit: 2\n        keywords: [belastingschuld",
            "        digit: 1\n        keywords: [belastingschuld",
        ),
        "organisations[0].lines[1].digit",
        "already used",
    ),
    (
        "malformed-hours",
        (
            'mon-fri: "08:00-17:00"\n      - id: uwv-ziek',
            'mon-fri: "08:00-1700"\n      - id: uwv-ziek',
        ),
        "organisations[1].lines[0].hours.mon-fri",
        "is not a span",
    ),
    (
        "unknown-key",
        ("        topic: WW\n", "        topic: WW\n        topc: WW\n"),
        "organisations[1].lines[0].topc",
        "unknown key",
    ),
]


def _broken(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    assert GOOD.count(old) == 1, old
    text = GOOD.replace(old, new)
    path = tmp_path / "lines.yaml"
    path.write_text(text, encoding="utf-8")
    # the line where the new text starts differing from the good file
    pairs = zip(GOOD.splitlines(), text.splitlines(), strict=False)
    line = next(i for i, (a, b) in enumerate(pairs, 1) if a != b)
    return path, line


def _env(tmp_path: Path, lines: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO", "CALLROUTER"))}
    env.update(
        CALLROUTER_LINES=str(lines),
        CALLROUTER_INSTANCE=str(tmp_path / "instance"),
        CALLROUTER_ENV="test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
    )
    env.pop("REDIS_URL", None)
    return env


def test_shipped_directory_passes_check(tmp_path):
    """`flask --app app lines check` accepts the shipped directory and prints a summary."""
    out = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "lines", "check"],
        cwd=ROOT,
        env=_env(tmp_path, ROOT / "config/lines.yaml"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout and "8 organisations" in out.stdout


@pytest.mark.parametrize("name,change,key,words", CASES, ids=[c[0] for c in CASES])
def test_lines_check_names_file_line_and_key(tmp_path, name, change, key, words):
    """Each broken file gives exactly one error naming file, line and key path; exit non-zero."""
    path, line = _broken(tmp_path, *change)
    good_env = _env(tmp_path, ROOT / "config/lines.yaml")
    out = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "lines", "check", str(path)],
        cwd=ROOT,
        env=good_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: {path}:{line}: {key}: " + errors[0].split(f"{key}: ", 1)[1]]
    assert words in errors[0]


@pytest.mark.parametrize("name,change,key,words", CASES, ids=[c[0] for c in CASES])
def test_service_refuses_to_start(tmp_path, name, change, key, words, capsys):
    """create_app (what gunicorn imports) exits with the same error for each broken file."""
    path, line = _broken(tmp_path, *change)
    with pytest.raises(SystemExit) as info:
        create_app(environ=_env(tmp_path, path))
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert f"{path}:{line}: {key}: " in err and words in err


def test_gunicorn_refuses_to_start_on_bad_file(tmp_path):
    """The production entry point (`gunicorn app:app`) stops with the error, not a traceback."""
    path, line = _broken(tmp_path, *CASES[0][1])
    out = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT,
        env=_env(tmp_path, path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert f"{path}:{line}: organisations[0].lines[0].numbers[1]" in out.stderr
    assert "Traceback" not in out.stderr


def test_hash_pin_prompts_and_prints_a_verifiable_hash(app):
    """`lines hash-pin` reads the PIN twice at a prompt and prints an argon2 hash of it."""
    from argon2 import PasswordHasher

    runner = app.test_cli_runner()
    result = runner.invoke(args=["lines", "hash-pin"], input="4821\n4821\n")
    assert result.exit_code == 0
    digest = result.output.strip().splitlines()[-1]
    assert digest.startswith("$argon2id$") and "4821" not in digest
    assert PasswordHasher().verify(digest, "4821")
    bad = runner.invoke(args=["lines", "hash-pin"], input="12\n12\n")
    assert bad.exit_code != 0


def test_gunicorn_reads_the_repo_settings_and_web_concurrency(monkeypatch, tmp_path):
    """`gunicorn app:app` from the repo root takes gunicorn.conf.py: several sync workers by
    default (so a slow page never holds Twilio's webhooks back), at most 4 (memory);
    WEB_CONCURRENCY wins when it is a positive number."""
    import runpy

    from gunicorn.config import Config

    # The settings prepare the metrics folder; here in a folder of the test's own, restored.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("CALLROUTER_METRICS_MASTER", "")

    def workers(env: str | None) -> int:
        if env is None:
            monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
        else:
            monkeypatch.setenv("WEB_CONCURRENCY", env)
        cfg = Config()
        for key, value in runpy.run_path(str(ROOT / "gunicorn.conf.py")).items():
            if key in cfg.settings:
                cfg.set(key, value)
        return cfg.workers

    assert 3 <= workers(None) <= 4
    assert workers("2") == 2
    assert workers("many") == workers("0") == workers(None)  # not a count: the default
