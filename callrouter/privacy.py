"""Pseudonyms, masks and encryption for phone numbers: nothing personal is stored in clear.

A number is kept as a keyed HMAC (to recognise it again) plus a masked display form
(`+31 6 ****5678`). A worker's number that a callback must dial later is encrypted with a key
derived from `SECRET_KEY`. A citizen's number is never stored at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken


class Pseudonymiser:
    def __init__(self, secret_key: str):
        root = secret_key.encode("utf-8")
        self._hmac_key = hmac.new(root, b"callrouter/number-pseudonym/v1", hashlib.sha256).digest()
        fernet_key = hmac.new(root, b"callrouter/number-encryption/v1", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(fernet_key))

    def pseudonym(self, number: str | None) -> str | None:
        if not number:
            return None
        return hmac.new(self._hmac_key, number.encode("utf-8"), hashlib.sha256).hexdigest()[:40]

    def encrypt(self, number: str) -> bytes:
        return self._fernet.encrypt(number.encode("utf-8"))

    def decrypt(self, token: bytes | None) -> str | None:
        if not token:
            return None
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            return None


def mask(number: str | None) -> str | None:
    """`+31612345678` -> `+31 6 ****5678`; anything unparseable -> `****` plus at most 2 digits."""
    if not number:
        return None
    if len(number) == 12 and number.startswith("+31") and number[3:].isdigit():
        # A Dutch number in E.164 (every registered caller, after normalising): the same
        # result as the general path below without parsing, which costs more than the rest of
        # an incoming webhook's bookkeeping.
        return f"+31 {number[3]} ****{number[-4:]}"
    try:
        parsed = phonenumbers.parse(number, "NL")
        national = str(parsed.national_number)
        if len(national) >= 6:
            return f"+{parsed.country_code} {national[0]} ****{national[-4:]}"
    except phonenumbers.NumberParseException:
        pass
    digits = "".join(ch for ch in number if ch.isdigit())
    return "****" + digits[-2:]


_TWILIO_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_SID_LIKE = re.compile(r"^[A-Za-z]{2}[0-9A-Za-z_-]{0,62}$")
_DIGIT_RUN = re.compile(r"[0-9]{6,}")


def loggable_sid(sid: str | None) -> str:
    """A SID as logs may show it. A forged webhook field could carry a phone number into the
    log: a well-formed Twilio SID is shown in full, another SID-like value with its runs of
    six or more digits cut out, anything else not at all."""
    if not sid:
        return "-"
    if _TWILIO_SID.match(sid):
        return sid
    if _SID_LIKE.match(sid):
        return _DIGIT_RUN.sub("#", sid)
    return "(not a SID)"
