"""The sandbox's state as plain values: phones, calls (one leg each) and conferences."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# (method, url, params) -> (status, body): how the provider reaches the service's webhooks.
Fetch = Callable[[str, str, dict], tuple[int, str]]

TERMINAL = ("completed", "busy", "no-answer", "failed", "canceled")


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


@dataclass
class Phone:
    """What a party does: keys/phrases for successive prompts, and how to answer a ring."""

    inputs: deque = field(default_factory=deque)  # "31", "say:de SVB", "*", "" (silence)
    answer: str = "answer"  # answer | busy | no-answer | reject | ask (a person decides)


@dataclass
class SimCall:
    sid: str
    from_: str
    to: str
    direction: str  # inbound | outbound-api
    label: str
    url: str | None = None
    status: str = "queued"
    status_callback: str | None = None
    status_events: tuple[str, ...] = ()
    sequence: int = 0
    verbs: deque = field(default_factory=deque)
    pending: tuple[str, str, dict] | None = None  # (method, url, extra params) to fetch next
    conference: str | None = None
    dial_action: str | None = None
    hangup_on_star: bool = False
    timeout: int = 60
    ended: bool = False
    after_load: list = field(default_factory=list)
    gather_seq: int = 0  # which prompt is waiting (a key belongs to the one it was meant for)
    prompt_words: int = 0  # words of that prompt (the page's time to hear it)

    def follow_dial_action(self) -> None:
        """The call's Dial is over: what comes next is the Dial action's TwiML."""
        self.verbs.clear()
        self.pending = ("POST", self.dial_action, {"DialCallStatus": "completed"})


@dataclass
class SimConference:
    name: str
    sid: str
    status_callback: str | None = None
    events: tuple[str, ...] = ()
    started: bool = False
    ended: bool = False
    sequence: int = 0
    members: dict = field(default_factory=dict)  # call sid -> flags
