"""Verification of `X-Twilio-Signature` on every webhook.

The URL that is checked is `PUBLIC_BASE_URL` + path + query, never the host the request claims,
so it works behind a TLS-terminating proxy and cannot be steered by a forged Host header. The
check fails closed: any error while validating counts as a bad signature.
"""

from __future__ import annotations

import base64
import hmac
import logging

from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger(__name__)


def public_url(public_base_url: str, path: str, query: bytes | str) -> str:
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    return public_base_url + path + (f"?{query}" if query else "")


_DIGESTS = {HMAC_SHA1: "sha1", HMAC_SHA256: "sha256"}


def expected_signature(token: str, url: str, params, algorithm: str = HMAC_SHA1) -> str:
    """The SDK's `RequestValidator.compute_signature`, in one pass over a Werkzeug form: the
    URL, then each name with each of its distinct values (both sorted), under one HMAC. The
    SDK asks the form for every name's values through an attribute it lacks (an exception per
    name) and builds the string by repeated concatenation; the result is the same (a test
    compares them on any form)."""
    digest = _DIGESTS.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"unsupported signature algorithm {algorithm[:20]!r}")
    if hasattr(params, "lists"):
        named = params.lists()
    else:
        named = ((name, [value]) for name, value in params.items())
    parts = [url]
    for name, values in sorted(named):
        parts.extend(name + value for value in sorted(set(values)))
    mac = hmac.digest(token.encode("utf-8"), "".join(parts).encode("utf-8"), digest)
    return base64.b64encode(mac).decode("ascii")


def is_valid(request, public_base_url: str, tokens: list[str]) -> bool:
    """True when the request carries a valid signature made with one of `tokens`."""
    try:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature or not tokens:
            return False
        url = public_url(public_base_url, request.path, request.query_string)
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        params = request.form if request.method == "POST" else {}
        for token in tokens:
            if not token:
                continue
            # Once, for the URL exactly as configured (what Twilio signs in practice); only a
            # request that fails it goes to the SDK's validate(), which also tries the URL
            # with and without its port.
            expected = expected_signature(token, url, params, algorithm)
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return True
            if RequestValidator(token).validate(url, params, signature, algorithm):
                return True
        return False
    except (ValueError, RequestEntityTooLarge) as exc:  # the sender's fault: one line
        log.warning("signature check refused the request: %s", str(exc)[:120])
        return False
    except Exception:  # fail closed whatever the validator or the body raised
        log.warning("signature check raised; request rejected", exc_info=True)
        return False


def sign(token: str, url: str, params: dict | None = None) -> str:
    """The signature Twilio would send for `url` and `params` (tests and the sandbox use it)."""
    return RequestValidator(token).compute_signature(url, params or {})
