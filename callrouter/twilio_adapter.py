"""The one adapter that talks to Twilio's REST API (or a Twilio-compatible provider).

It wraps the twilio SDK's REST client, honours `TWILIO_API_BASE_URL`, and turns the SDK's
exceptions into `TelephonyError` so that callers never depend on `twilio.rest` directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


# Answers after which the same request may well succeed a little later. A request that makes
# a new call is repeated only after 429 (refused for the rate, not acted on): after a 5xx or a
# 408 the call may exist all the same, and a second request would ring a second phone.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_CREATE_STATUSES = frozenset({429})


class TelephonyError(Exception):
    """A REST request to the telephony provider failed.

    `transient`: the failure may pass and repeating the request is safe (the provider was
    unreachable or overloaded, and did not act on it); otherwise it is permanent (a 4xx: the
    call has ended, the number is invalid) or repeating it could act twice.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: int | None = None,
        *,
        transient: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    status: str


@dataclass(frozen=True)
class ProviderCall:
    """One call as the provider's call list reports it (for reconciliation)."""

    sid: str
    status: str
    direction: str
    from_: str
    to: str
    start_time: datetime | None
    end_time: datetime | None
    duration: int | None


# Twilio refuses a From it cannot present: 21210 (not a verified or owned number) and 21212
# (invalid From). Worth an operator's attention, not just a failed leg.
REFUSED_CALLER_ID = (21210, 21212)


def _check_caller_id(exc: TelephonyError, number: str) -> None:
    if exc.code in REFUSED_CALLER_ID:
        log.error(
            "the provider refused caller ID %s (error %s): set `caller_id` in the line "
            "directory to a number verified with the provider",
            number,
            exc.code,
        )


class TwilioAdapter:
    """Calls, conference participants and messages, through the twilio SDK."""

    def __init__(self, account_sid: str, auth_token: str, api_base_url: str, timeout: float = 10):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self._client = Client(
            account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout)
        )
        if api_base_url and urlparse(api_base_url).hostname != "api.twilio.com":
            # The SDK has no constructor argument for this; region/edge would rewrite the host.
            self._client.api.base_url = api_base_url
            self._client.region = None
            self._client.edge = None

    def _wrap(self, what: str, fn, *args, _creates: bool = False, **kwargs):
        """Call the SDK; its failures as `TelephonyError`. `_creates`: the request makes a new
        call, so a request that may have reached the provider must not be repeated."""
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return fn(*args, **kwargs)
        except TwilioRestException as exc:
            log.warning("telephony %s failed: HTTP %s, code %s", what, exc.status, exc.code)
            passing = TRANSIENT_CREATE_STATUSES if _creates else TRANSIENT_STATUSES
            raise TelephonyError(
                f"{what} failed: {exc.msg}",
                exc.status,
                exc.code,
                transient=exc.status in passing,
            ) from None
        except (TwilioException, OSError) as exc:
            log.warning("telephony %s failed: %s", what, type(exc).__name__)
            transient = _not_sent(exc) if _creates else True
            raise TelephonyError(
                f"{what} failed: {type(exc).__name__}", transient=transient
            ) from None

    def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        timeout: int,
        status_events: tuple[str, ...] = ("initiated", "ringing", "answered", "completed"),
    ) -> PlacedCall:
        try:
            call = self._wrap(
                "create call",
                self._client.calls.create,
                _creates=True,
                to=to,
                from_=from_,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=list(status_events),
                timeout=timeout,
            )
        except TelephonyError as exc:
            _check_caller_id(exc, from_)
            raise
        return PlacedCall(call.sid, call.status)

    def update_call(self, sid: str, *, status: str | None = None, url: str | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if status:
            kwargs["status"] = status
        if url:
            kwargs["url"] = url
            kwargs["method"] = "POST"
        self._wrap("update call", self._client.calls(sid).update, **kwargs)

    def add_participant(
        self,
        conference: str,
        *,
        to: str,
        from_: str,
        status_callback: str,
        timeout: int = 30,
        end_conference_on_exit: bool = False,
    ) -> PlacedCall:
        try:
            p = self._wrap(
                "add participant",
                self._client.conferences(conference).participants.create,
                _creates=True,
                from_=from_,
                to=to,
                status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                timeout=timeout,
                beep="false",
                early_media=True,
                start_conference_on_enter=True,
                end_conference_on_exit=end_conference_on_exit,
            )
        except TelephonyError as exc:
            _check_caller_id(exc, from_)
            raise
        return PlacedCall(p.call_sid, getattr(p, "status", "queued") or "queued")

    def hold_participant(
        self, conference_sid: str, call_sid: str, hold: bool, hold_url: str | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"hold": hold}
        if hold and hold_url:
            kwargs.update(hold_url=hold_url, hold_method="POST")
        self._wrap(
            "hold participant",
            self._client.conferences(conference_sid).participants(call_sid).update,
            **kwargs,
        )

    def end_conference(self, conference_sid: str) -> None:
        self._wrap(
            "end conference", self._client.conferences(conference_sid).update, status="completed"
        )

    def list_calls(self, since: datetime, limit: int = 5000) -> list[ProviderCall]:
        """Calls that started at or after `since` (`GET Calls.json?StartTime>=`)."""
        records = self._wrap(
            "list calls",
            self._client.calls.list,
            start_time_after=since,
            limit=limit,
            page_size=min(limit, 1000),
        )
        out = []
        for c in records:
            duration = getattr(c, "duration", None)
            out.append(
                ProviderCall(
                    sid=c.sid,
                    status=c.status or "",
                    direction=getattr(c, "direction", "") or "",
                    from_=getattr(c, "_from", None) or getattr(c, "from_", "") or "",
                    to=c.to or "",
                    start_time=getattr(c, "start_time", None),
                    end_time=getattr(c, "end_time", None),
                    duration=int(duration) if str(duration or "").isdigit() else None,
                )
            )
        return out

    def send_sms(self, *, to: str, from_: str, body: str) -> str:
        msg = self._wrap(
            "send message",
            self._client.messages.create,
            _creates=True,
            to=to,
            from_=from_,
            body=body,
        )
        return msg.sid


def _not_sent(exc: BaseException) -> bool:
    """True when a request certainly never reached the provider: no connection was made
    (refused, no route, name not found, connect timeout). A read timeout or a dropped
    connection may come after the provider acted."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ConnectTimeout
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, ConnectTimeout):
        return True
    if isinstance(exc, RequestsConnectionError):
        inner = exc.args[0] if exc.args else None
        return isinstance(getattr(inner, "reason", inner), NewConnectionError)
    return False
