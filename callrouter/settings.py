"""Settings from the environment, read in one place.

`from_env(environ)` takes the environment as a parameter so that tests pass their own. In
production (`CALLROUTER_ENV=production`) a missing secret stops start-up with a clear message;
in development the service makes local secrets under `instance/` so that the web process and
the worker agree on them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TWILIO_API_DEFAULT = "https://api.twilio.com"
ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    env: str
    instance_path: Path
    lines_path: Path
    database_url: str
    redis_url: str | None  # None: the embedded Redis under instance/
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_auth_token_secondary: str | None
    twilio_api_base_url: str
    public_base_url: str
    secret_key: str
    auto_migrate: bool
    callback_attempts: int
    retention_days: int
    proxies: int = 0  # reverse proxies in front that set X-Forwarded-For / -Proto (0: none)
    metrics_token: str | None = None  # Bearer token of /metrics; None: the endpoint is off
    log_format: str = "text"  # text | json
    # The organisation's LDV collector (OTLP/HTTP traces endpoint); None: records stay in the
    # table only. The exporter's own OTEL_EXPORTER_OTLP_* variables (headers, certificates)
    # apply as well.
    ldv_otlp_endpoint: str | None = None

    @property
    def production(self) -> bool:
        return self.env == "production"

    def public_url(self, path: str) -> str:
        return self.public_base_url + path


def _local_secret(instance: Path, name: str, prefix: str = "") -> str:
    """A random secret kept in instance/ (development only), made once and shared by processes."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        value = prefix + secrets.token_hex(16)
        fh.write(value)
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise SettingsError(f"{name} must be a whole number from {lo} to {hi}, not {raw!r}")
    return int(raw)


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    mode = env.get("CALLROUTER_ENV", "development").strip().lower()
    if mode not in ("production", "development", "test"):
        raise SettingsError(f"CALLROUTER_ENV must be production, development or test, not {mode!r}")
    instance = instance_folder(env)
    lines = Path(env.get("CALLROUTER_LINES", "config/lines.yaml"))
    if not lines.is_absolute() and not lines.exists() and (ROOT / lines).exists():
        lines = ROOT / lines
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'callrouter.db'}"
    if database_url.startswith("postgres://"):  # the form many hosts hand out
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    public = (env.get("PUBLIC_BASE_URL") or "").strip().rstrip("/")
    sid = (env.get("TWILIO_ACCOUNT_SID") or "").strip()
    token = (env.get("TWILIO_AUTH_TOKEN") or "").strip()
    secret = (env.get("SECRET_KEY") or "").strip()

    if mode == "production":
        missing = [
            name
            for name, value in (
                ("SECRET_KEY", secret),
                ("TWILIO_ACCOUNT_SID", sid),
                ("TWILIO_AUTH_TOKEN", token),
                ("PUBLIC_BASE_URL", public),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                "callrouter cannot start in production without: "
                + ", ".join(missing)
                + ". Set them in the environment (never in the repository)."
            )
        _check_secret_key(secret)
    else:
        secret = secret or _local_secret(instance, "secret_key")
        sid = sid or "AC" + "0" * 32
        token = token or _local_secret(instance, "dev_auth_token")
        public = public or "http://127.0.0.1:8000"

    if not public.startswith(("http://", "https://")):
        raise SettingsError(f"PUBLIC_BASE_URL must start with http:// or https://, not {public!r}")
    metrics_token = (env.get("METRICS_TOKEN") or "").strip() or None
    if metrics_token and len(metrics_token) < METRICS_TOKEN_MIN:
        raise SettingsError(
            f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN} characters "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    log_format = (env.get("LOG_FORMAT") or "text").strip().lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"LOG_FORMAT must be text or json, not {log_format!r}")

    return Settings(
        env=mode,
        instance_path=instance,
        lines_path=lines,
        database_url=database_url,
        redis_url=(env.get("REDIS_URL") or "").strip() or None,
        twilio_account_sid=sid,
        twilio_auth_token=token,
        twilio_auth_token_secondary=(env.get("TWILIO_AUTH_TOKEN_SECONDARY") or "").strip() or None,
        twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or TWILIO_API_DEFAULT).rstrip("/"),
        public_base_url=public,
        secret_key=secret,
        auto_migrate=env.get("CALLROUTER_AUTO_MIGRATE", "1") not in ("0", "false", "no"),
        callback_attempts=_int(env, "CALLROUTER_CALLBACK_ATTEMPTS", 3, 1, 20),
        retention_days=_int(env, "CALLROUTER_RETENTION_DAYS", 90, 1, 3650),
        proxies=_int(env, "CALLROUTER_PROXIES", 0, 0, 5),
        metrics_token=metrics_token,
        log_format=log_format,
        ldv_otlp_endpoint=_ldv_endpoint(env),
    )


METRICS_TOKEN_MIN = 24


def _ldv_endpoint(env: Mapping[str, str]) -> str | None:
    endpoint = (env.get("LDV_OTLP_ENDPOINT") or "").strip() or None
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(
            "LDV_OTLP_ENDPOINT must be the collector's OTLP/HTTP address, such as "
            f"https://ldv.example.nl/v1/traces, not {endpoint!r}"
        )
    return endpoint


def instance_folder(env: Mapping[str, str]) -> Path:
    """The service's own folder (local secrets, the SQLite database, the embedded Redis)."""
    return Path(env.get("CALLROUTER_INSTANCE", ROOT / "instance")).resolve()


SECRET_MIN_LENGTH = 32
SECRET_MIN_DISTINCT = 10


def _check_secret_key(secret: str) -> None:
    """A production key signs the dashboard's sessions and CSRF tokens: refuse one that is
    short or made of few characters (`aaaa...`, `0123456789abcdef`)."""
    if len(secret) < SECRET_MIN_LENGTH or len(set(secret)) < SECRET_MIN_DISTINCT:
        raise SettingsError(
            f"SECRET_KEY is too weak: it needs at least {SECRET_MIN_LENGTH} characters, of at "
            f"least {SECRET_MIN_DISTINCT} different ones. Make one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
