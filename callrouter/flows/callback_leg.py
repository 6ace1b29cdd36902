"""One attempt of a call-back as a state machine: pure, no store.

At a call-back's time the professional is called first; they hear whose request it is and
accept, then the worker is called into the same conference. An attempt's state is the
request's state while the attempt is the current one: `dialling` (the professional's phone
rings or whispers), `connecting` (accepted, the worker is being called), `connected` (both
talk); any other state means the attempt is over, and every event about it is absorbed.

`step(state, event) -> (state, actions)`. The actions are plain values; the webhook carries
them out. `Claim` is guarded in the store (dialling -> connecting, once): when the claim is
lost, the attempt was taken meanwhile and the actions after it are not carried out.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.flows.transfer import TERMINAL, leg_outcome

DIALLING, CONNECTING, CONNECTED = "dialling", "connecting", "connected"
WHISPER_PLAYS = 3  # how often the professional hears the request before it counts as declined

# ------------------------------------------------------------------ events


@dataclass(frozen=True)
class Answered:
    """The professional answered the call-back's call."""


@dataclass(frozen=True)
class Key:
    """The professional's key after the whisper, which they heard `plays` times;
    `repeat`: this same call accepted already (a retried delivery of the acceptance)."""

    key: str
    plays: int
    repeat: bool = False


@dataclass(frozen=True)
class ProfessionalStatus:
    status: str


@dataclass(frozen=True)
class WorkerStatus:
    status: str


# ------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Reply:
    """What the professional hears: `whisper` (play number `plays`), `conference` (wait for
    the worker there), `not-needed` or `declined` (and the call ends)."""

    kind: str
    plays: int = 0


@dataclass(frozen=True)
class Claim:
    """Take the attempt: dialling -> connecting, only if it is still dialling."""


@dataclass(frozen=True)
class Job:
    """A job of `callbacks`: dial_worker, attempt_failed (with the outcome), professional_left,
    worker_unreachable, finished (with the outcome)."""

    name: str
    outcome: str | None = None


def step(state: str | None, event) -> tuple[str | None, list]:
    if isinstance(event, Answered):
        return state, [Reply("whisper", 1) if state == DIALLING else Reply("not-needed")]
    if isinstance(event, Key):
        return _key(state, event)
    if isinstance(event, ProfessionalStatus):
        return state, _professional_ended(state, event.status)
    if isinstance(event, WorkerStatus):
        return _worker_status(state, event.status)
    raise TypeError(f"not an event of a call-back: {event!r}")


def _key(state: str | None, ev: Key) -> tuple[str | None, list]:
    if ev.key == "1" and ev.repeat and state in (CONNECTING, CONNECTED):
        return state, [Reply("conference")]  # answered the same way again
    if state != DIALLING:
        return state, [Reply("not-needed")]
    if ev.key != "1":
        if ev.plays < WHISPER_PLAYS:
            return state, [Reply("whisper", ev.plays + 1)]
        # No acceptance: the leg's final status records the attempt as declined.
        return state, [Reply("declined")]
    return CONNECTING, [Claim(), Job("dial_worker"), Reply("conference")]


def _professional_ended(state: str | None, status: str) -> list:
    if status not in TERMINAL:
        return []
    if state == DIALLING:  # never accepted: busy, no answer, declined, failed
        return [Job("attempt_failed", leg_outcome(status, answered=False, accepted=False))]
    if state == CONNECTING:  # hung up while the worker was being called
        return [Job("professional_left")]
    if state == CONNECTED:
        return [Job("finished", "connected")]
    return []


def _worker_status(state: str | None, status: str) -> tuple[str | None, list]:
    if status in ("in-progress", "answered"):
        return (CONNECTED, []) if state == CONNECTING else (state, [])
    if status not in TERMINAL:
        return state, []
    if state == CONNECTING and status != "completed":
        return state, [Job("worker_unreachable")]
    if state == CONNECTED or status == "completed":
        # Twilio reports `completed` only for an answered call: they did talk.
        return state, [Job("finished", "connected")]
    return state, []
