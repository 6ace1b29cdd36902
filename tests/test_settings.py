"""Settings come from the environment through one function; production needs its secrets."""

from __future__ import annotations

import pytest

from callrouter.settings import SettingsError, from_env

PROD = {
    "CALLROUTER_ENV": "production",
    "SECRET_KEY": "kX3v9Qm2Lp7Rt5Wz8Yb1Nc4Hd6Jf0Gs_",
    "TWILIO_ACCOUNT_SID": "AC1",
    "TWILIO_AUTH_TOKEN": "t" * 32,
    "PUBLIC_BASE_URL": "https://cr.example.nl/",
}


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "PUBLIC_BASE_URL"]
)
def test_production_refuses_missing_secret(tmp_path, missing):
    """In production a missing secret stops start-up with a message naming it."""
    env = dict(PROD, CALLROUTER_INSTANCE=str(tmp_path))
    del env[missing]
    with pytest.raises(SettingsError, match=missing):
        from_env(env)


def test_production_settings_read_from_given_environment(tmp_path):
    """Values come from the mapping passed in; the public URL loses its trailing slash."""
    s = from_env(
        dict(
            PROD,
            CALLROUTER_INSTANCE=str(tmp_path),
            DATABASE_URL="postgres://u@db/cr",
            TWILIO_API_BASE_URL="http://x:9/",
        )
    )
    assert s.production and s.public_base_url == "https://cr.example.nl"
    assert s.database_url == "postgresql+psycopg://u@db/cr"
    assert s.twilio_api_base_url == "http://x:9" and s.redis_url is None
    assert s.public_url("/voice/incoming") == "https://cr.example.nl/voice/incoming"


def test_development_makes_stable_local_secrets(tmp_path):
    """Without secrets, development makes them once in instance/ and reuses them."""
    a = from_env({"CALLROUTER_INSTANCE": str(tmp_path)})
    b = from_env({"CALLROUTER_INSTANCE": str(tmp_path)})
    assert a.secret_key == b.secret_key and len(a.secret_key) >= 32
    assert a.twilio_auth_token == b.twilio_auth_token
    assert a.database_url.startswith("sqlite:///") and str(tmp_path) in a.database_url
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_bad_values_are_refused(tmp_path):
    """A mode or URL that makes no sense is refused with a clear message."""
    with pytest.raises(SettingsError, match="CALLROUTER_ENV"):
        from_env({"CALLROUTER_ENV": "prod", "CALLROUTER_INSTANCE": str(tmp_path)})
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        from_env({"PUBLIC_BASE_URL": "cr.example.nl", "CALLROUTER_INSTANCE": str(tmp_path)})


@pytest.mark.parametrize(
    "weak", ["s" * 32, "aaaaaaaaaaaaaaaa", "0123456789abcdef", "ab" * 40, "abcdefghi" * 4]
)
def test_production_refuses_a_weak_secret_key(tmp_path, weak):
    """Short keys and keys of few distinct characters stop start-up, saying how to make one."""
    env = dict(PROD, CALLROUTER_INSTANCE=str(tmp_path), SECRET_KEY=weak)
    with pytest.raises(SettingsError, match="SECRET_KEY is too weak") as info:
        from_env(env)
    assert "secrets.token_urlsafe" in str(info.value)


def test_production_accepts_a_generated_secret_key(tmp_path):
    import secrets

    key = secrets.token_urlsafe(48)
    assert from_env(dict(PROD, CALLROUTER_INSTANCE=str(tmp_path), SECRET_KEY=key)).secret_key == key
