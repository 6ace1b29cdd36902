"""The warm transfer's values: its state, the events that move it and the actions it asks
for. Plain frozen values (`flows.warm_transfer` is the machine that steps them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callrouter.flows.transfer import TERMINAL

# Where the worker is, as far as this transfer knows.
WAITING = "waiting"  # in the conference, nobody has accepted yet
TALKING = "talking"  # in the conference with the professional (and maybe the citizen)
MENU = "menu"  # outside the conference: the * menu and the prompts that follow it
AWAY = "away"  # done with this transfer: handed over, on to the next step, or at the end
GONE = "gone"  # hung up

WORKER = "worker"  # the `who` of a participant event about the worker's own call


@dataclass(frozen=True)
class Leg:
    """One outbound call of the transfer: a professional's number or the citizen."""

    id: str
    kind: str  # professional | citizen
    position: int
    status: str | None = None
    accepted: bool = False
    left: bool = False  # a participant-leave was seen: out of the conference for good
    outcome: str | None = None

    @property
    def present(self) -> bool:
        """Still on the line and not known to have left the conference."""
        return self.status not in TERMINAL and not self.left


@dataclass(frozen=True)
class Transfer:
    id: str
    phase: str  # dialling | connected | ended
    created_at: datetime
    worker: str = WAITING
    legs: tuple[Leg, ...] = ()
    outcome: str | None = None
    chain: bool = False  # a step of a life-event chain
    public_wait_minutes: int = 0
    conference_sid: str | None = None  # the conversation's conference
    worker_conference: str | None = None  # the conference the worker joined last
    hold_wanted: bool | None = None
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    worker_left_at: datetime | None = None
    time_to_answer_s: float | None = None
    minutes_saved: float | None = None
    duration_s: float | None = None

    def leg(self, leg_id: str) -> Leg | None:
        return next((leg for leg in self.legs if leg.id == leg_id), None)

    @property
    def professional(self) -> Leg | None:
        """The professional who accepted, if one did."""
        return next((leg for leg in self.legs if leg.kind == "professional" and leg.accepted), None)

    @property
    def professional_present(self) -> bool:
        prof = self.professional
        return self.phase == "connected" and prof is not None and prof.present

    @property
    def citizen_present(self) -> bool:
        return any(leg.kind == "citizen" and leg.present for leg in self.legs)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class LegStatus:
    """A status callback of one of the transfer's outbound legs."""

    leg_id: str
    status: str


@dataclass(frozen=True)
class Joined:
    """`participant-join`: `who` is WORKER or a leg id."""

    who: str
    conference_sid: str | None = None


@dataclass(frozen=True)
class Left:
    """`participant-leave`: `who` is WORKER or a leg id."""

    who: str


@dataclass(frozen=True)
class ConferenceEnded:
    conference_sid: str | None = None


@dataclass(frozen=True)
class WorkerHungUp:
    """The worker's own call ended (its status callback, or a Dial action saying so)."""


@dataclass(frozen=True)
class DialEnded:
    """The worker's Dial action while the worker is still on the line: they pressed *, or the
    conference ended around them."""


@dataclass(frozen=True)
class Accept:
    leg_id: str


@dataclass(frozen=True)
class Decline:
    leg_id: str


@dataclass(frozen=True)
class Handover:
    """The worker's key in the * menu: 1 add the citizen, 2 hand over (or end), 3 or nothing
    back to the conversation, 4 on to the chain's next step."""

    key: str


@dataclass(frozen=True)
class Return:
    """The worker wants to go back into the conversation (after adding the citizen)."""


@dataclass(frozen=True)
class HuntExhausted:
    """Every number of the hunt group failed (or the watchdog's deadline passed)."""

    leg_outcomes: tuple[str, ...] = ()
    deadline: bool = False


Event = (
    LegStatus
    | Joined
    | Left
    | ConferenceEnded
    | WorkerHungUp
    | DialEnded
    | Accept
    | Decline
    | Handover
    | Return
    | HuntExhausted
)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Reply:
    """What the worker's (or the professional's) webhook answers; `kind` names the document."""

    kind: str


@dataclass(frozen=True)
class CancelLegs:
    """End every professional leg still ringing or whispering."""


@dataclass(frozen=True)
class EndConversation:
    """Nobody is left with the professional (the worker left; after a hand-over, the
    citizen): tell the professional and end their call."""

    who: str = "worker"


@dataclass(frozen=True)
class EndConference:
    """End a conference the worker is alone in."""

    conference_sid: str


@dataclass(frozen=True)
class Hold:
    on: bool


@dataclass(frozen=True)
class BringWorkerBack:
    """The worker is in the * menu and the conversation ended: move their call on."""


@dataclass(frozen=True)
class PlaceLeg:
    position: int


@dataclass(frozen=True)
class RedirectWorker:
    """Move the worker's call (waiting in the conference) to the unanswered prompt."""


@dataclass(frozen=True)
class CallOutcome:
    """Set the call's outcome when it is empty or one of `over`."""

    outcome: str
    over: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepState:
    """Move the transfer's chain step (if any) to `state`."""

    state: str


Action = (
    Reply
    | CancelLegs
    | EndConversation
    | EndConference
    | Hold
    | BringWorkerBack
    | PlaceLeg
    | RedirectWorker
    | CallOutcome
    | StepState
)
