"""Verification of `X-Twilio-Signature` on every webhook.

The URL that is checked is `PUBLIC_BASE_URL` + path + query, never the host the request claims,
so it works behind a TLS-terminating proxy and cannot be steered by a forged Host header. The
check fails closed: any error while validating counts as a bad signature.
"""

from __future__ import annotations

import hmac
import logging

from twilio.request_validator import (
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
            validator = RequestValidator(token)
            # Fast path: the URL exactly as configured (what Twilio signs in practice); the
            # SDK's validate() also tries it with and without the port.
            expected = validator.compute_signature(url, params, algorithm)
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return True
            if validator.validate(url, params, signature, algorithm):
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
