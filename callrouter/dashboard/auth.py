"""Accounts, server-side sessions, API tokens and the audit log.

Passwords are argon2id hashes; a browser session is a random token in Flask's signed cookie
whose SHA-256 is a row in `web_sessions`, so logging out (deleting the row) ends it on the
server and a replayed cookie finds nothing. API tokens are stored as SHA-256 only. Every login,
lockout and read of personal data becomes an `AuditEntry`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.exceptions import RedisError
from sqlalchemy import delete, select, update

from callrouter import clock
from callrouter.models import ApiToken, AuditEntry, User, WebSession

ROLES = ("admin", "supervisor")
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=12)
SEEN_EVERY = timedelta(minutes=1)  # refresh last_seen_at at most this often
MIN_PASSWORD = 12

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail address is unknown, so both answers take as long."""
    return _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A user or token cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user or an API token, and what they may see."""

    kind: str  # user | token
    name: str  # e-mail address or token name
    role: str  # admin | supervisor
    org_id: str | None  # None: every organisation (admin)
    user_id: int | None = None

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def now() -> datetime:
    return clock.now()


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_org(directory, role: str, org_id: str | None) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "supervisor" and not org_id:
        raise AccountError("a supervisor needs --org: the caller or organisation id they see")
    if org_id and directory.caller(org_id) is None and directory.organisation(org_id) is None:
        raise AccountError(
            f"--org {org_id!r} is neither a caller nor an organisation id in the directory"
        )


def create_user(
    session, directory, email: str, password: str, role: str, org_id: str | None
) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an e-mail address")
    if role == "admin":
        org_id = None
    check_org(directory, role, org_id)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"a user {email} exists already")
    user = User(
        email=email,
        password_hash=hash_password(password),
        role=role,
        org_id=org_id,
        failed_logins=0,
        disabled=False,
        created_at=now(),
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    reason: str  # ok | invalid | locked | lockout (this failure locked it) | throttled


@dataclass(frozen=True)
class LoginClaim:
    """An attempt that may check a password: the account's id and hash, and how many failed
    attempts (this one included) it counts, or why no password is checked at all."""

    user: User | None
    hashed: str | None
    attempt: int = 0
    refused: str | None = None  # invalid (no such account) | locked | throttled


def claim_attempt(session, email: str, throttled: bool = False) -> LoginClaim:
    """Take one of the account's attempts, atomically, before any password is checked.

    One conditional UPDATE counts the attempt, and only while the account is not locked and
    has attempts left: parallel requests each take their own, so no more than
    MAX_FAILED_LOGINS passwords are ever checked before the lock (a count read first and
    written after the check let 40 parallel requests check 8). Commit it before the check, so
    that the row is not held while argon2 works."""
    email = (email or "").strip().lower()[:254]
    user = session.scalar(select(User).where(User.email == email)) if email else None
    if user is None or user.disabled:
        return LoginClaim(None, None, refused="invalid")
    if throttled:
        return LoginClaim(user, None, refused="throttled")
    moment = now()
    open_ = (User.locked_until.is_(None)) | (User.locked_until <= moment)
    taken = session.execute(
        update(User)
        .where(User.id == user.id, open_, User.failed_logins < MAX_FAILED_LOGINS)
        .values(
            failed_logins=User.failed_logins + 1,
            locked_until=None,
        )
        .returning(User.failed_logins)
    ).scalar()
    if taken is None:
        # Locked now; or a lock that has run out while its count was still full.
        reopened = session.execute(
            update(User)
            .where(User.id == user.id, User.locked_until <= moment)
            .values(failed_logins=1, locked_until=None)
            .returning(User.failed_logins)
        ).scalar()
        if reopened is None:
            return LoginClaim(user, None, refused="locked")
        taken = reopened
    return LoginClaim(user, user.password_hash, attempt=taken)


def check_password(claim: LoginClaim, password: str) -> bool:
    """The password check, outside any transaction. A refused attempt is checked against a
    dummy hash, so that every answer, whatever the account, takes as long."""
    if claim.refused is not None or claim.hashed is None:
        _verify(_dummy_hash(), password)
        return False
    return _verify(claim.hashed, password)


def finish_attempt(session, claim: LoginClaim, ok: bool, password: str = "") -> LoginResult:
    """Settle a checked attempt: a right password clears the count; the attempt that used up
    the account's allowance locks it for LOCKOUT."""
    if claim.refused is not None:
        return LoginResult(claim.user, claim.refused)
    user, moment = claim.user, now()
    if ok:
        values = {"failed_logins": 0, "locked_until": None, "last_login_at": moment}
        if _hasher.check_needs_rehash(user.password_hash):
            values["password_hash"] = hash_password(password)
        session.execute(update(User).where(User.id == user.id).values(**values))
        return LoginResult(user, "ok")
    if claim.attempt >= MAX_FAILED_LOGINS:
        session.execute(
            update(User).where(User.id == user.id).values(locked_until=moment + LOCKOUT)
        )
        return LoginResult(user, "lockout")
    return LoginResult(user, "invalid")


def authenticate(session, email: str, password: str) -> LoginResult:
    """Claim, check and settle one login in `session` (the tests' and the CLI's short form;
    the login page commits the claim before the check)."""
    claim = claim_attempt(session, email)
    return finish_attempt(session, claim, check_password(claim, password), password)


# Failed logins from one client address within THROTTLE_WINDOW before it may try no more
# (whatever the accounts it tries): guessing across accounts, and locking them all, is slowed.
THROTTLE_PER_ADDRESS = 20
THROTTLE_WINDOW = timedelta(minutes=15)


def _throttle_key(address: str) -> str:
    digest = hashlib.sha256(address.encode()).hexdigest()[:32]  # no address in clear in Redis
    return f"callrouter:login-fail:{digest}"


def address_throttled(redis, address: str) -> bool:
    """Whether the address used up its failed logins; when Redis cannot say, it is not (the
    account's own count still holds)."""
    try:
        return int(redis.get(_throttle_key(address)) or 0) >= THROTTLE_PER_ADDRESS
    except (RedisError, OSError):  # Redis down: the per-account lock is the guard left
        return False


def count_address_failure(redis, address: str) -> None:
    key = _throttle_key(address)
    try:
        # The window starts with the first failure (SET NX keeps a running one; INCR keeps
        # the expiry). Not EXPIRE NX: Redis 6, the embedded server's, has no such option.
        pipe = redis.pipeline()
        pipe.set(key, 0, ex=int(THROTTLE_WINDOW.total_seconds()), nx=True)
        pipe.incr(key)
        pipe.execute()
    except (RedisError, OSError):  # Redis down: nothing counted
        pass


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password or "")
    except (VerificationError, InvalidHashError):
        return False


def start_session(session, user: User) -> str:
    """A new server-side session for `user`; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    moment = now()
    session.add(
        WebSession(
            token_hash=_sha256(token), user_id=user.id, created_at=moment, last_seen_at=moment
        )
    )
    return token


def session_principal(session, token: str | None) -> Principal | None:
    """The user of a live session, or None (unknown, ended, idle or too old)."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _sha256(token))
    ).first()
    if row is None:
        return None
    web, user = row
    moment = now()
    if (
        user.disabled
        or moment - web.last_seen_at > SESSION_IDLE
        or moment - web.created_at > SESSION_MAX
    ):
        session.execute(delete(WebSession).where(WebSession.token_hash == web.token_hash))
        return None
    if moment - web.last_seen_at > SEEN_EVERY:
        session.execute(
            update(WebSession)
            .where(WebSession.token_hash == web.token_hash)
            .values(last_seen_at=moment)
        )
    return Principal("user", user.email, user.role, user.org_id, user.id)


def end_session(session, token: str | None) -> None:
    if token and isinstance(token, str):
        session.execute(delete(WebSession).where(WebSession.token_hash == _sha256(token)))


def create_token(session, directory, name: str, org_id: str | None) -> str:
    """A new API token; the clear value is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 80:
        raise AccountError("a token needs a --name of 1 to 80 characters")
    check_org(directory, "supervisor" if org_id else "admin", org_id)
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise AccountError(f"a token named {name!r} exists already")
    token = "crt_" + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_sha256(token), org_id=org_id, created_at=now()))
    return token


def token_principal(session, token: str | None) -> Principal | None:
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(token)))
    if row is None or row.revoked_at is not None:
        return None
    # Constant-time compare of what was looked up by hash (defence in depth).
    if not hmac.compare_digest(row.token_hash, _sha256(token)):
        return None
    moment = now()
    if row.last_used_at is None or moment - row.last_used_at > SEEN_EVERY:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=moment))
    return Principal("token", row.name, "supervisor" if row.org_id else "admin", row.org_id)


def revoke_token(session, name: str) -> bool:
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return bool(result.rowcount)


def audit(
    session,
    actor: str,
    action: str,
    result: str,
    *,
    obj: str | None = None,
    origin: str | None = None,
    detail: dict | None = None,
) -> None:
    """Append one audit entry (in the caller's transaction)."""
    session.add(
        AuditEntry(
            at=now(),
            actor=actor[:120],
            action=action[:40],
            object=(obj or None) and obj[:120],
            result=result[:16],
            origin=(origin or None) and origin[:64],
            detail=detail,
        )
    )
