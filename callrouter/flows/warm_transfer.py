"""The warm transfer as a state machine: `step(transfer, event, now) -> (transfer, actions)`.

Twilio promises no order between a `<Dial>` action, the conference's participant events and
the legs' status callbacks, and may deliver any of them late or twice. Every decision here uses
what the event itself says (a `participant-leave` of the professional means the professional is
gone, whatever the leg's last status said), terminal states stay terminal, and an event about a
leg that already ended is absorbed. The rules that matter most:

- a worker is offered the hand-over menu only while somebody else is still in the conference,
  and is sent back into the conference only then: nobody is put back into a conference alone;
- when the professional is gone, the conversation is over: the worker hears so and goes on
  (the next step of a chain, or a new transfer) without having to press anything;
- a worker who is found alone in a conference all the same (the professional left while the
  worker was on the way back) has that conference ended, so the worker's Dial ends as well.

Pure: plain values in, plain values out; the web layer loads the state, renders the reply and
carries out the actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from callrouter.flows.transfer import (
    TERMINAL,
    advances,
    leg_outcome,
    minutes_saved,
    transfer_outcome,
)
from callrouter.flows.transfer_values import (  # noqa: F401 - the machine's vocabulary, re-exported
    AWAY,
    GONE,
    MENU,
    TALKING,
    WAITING,
    WORKER,
    Accept,
    Action,
    BringWorkerBack,
    CallOutcome,
    CancelLegs,
    ConferenceEnded,
    Decline,
    DialEnded,
    EndConference,
    EndConversation,
    Event,
    Handover,
    Hold,
    HuntExhausted,
    Joined,
    Left,
    Leg,
    LegStatus,
    PlaceLeg,
    RedirectWorker,
    Reply,
    Return,
    StepState,
    Transfer,
    WorkerHungUp,
)


@dataclass
class _Out:
    t: Transfer
    actions: list = field(default_factory=list)

    def do(self, *actions) -> None:
        self.actions.extend(actions)

    def set(self, **changes) -> None:
        self.t = replace(self.t, **changes)

    def set_leg(self, leg_id: str, **changes) -> None:
        self.t = replace(
            self.t,
            legs=tuple(replace(leg, **changes) if leg.id == leg_id else leg for leg in self.t.legs),
        )


# --------------------------------------------------------------------------- the machine


def step(t: Transfer, event, now: datetime) -> tuple[Transfer, list]:
    """Apply one event; the new state and the actions to carry out, in order."""
    out = _Out(t)
    handler = _HANDLERS[type(event)]
    handler(out, event, now)
    return out.t, out.actions


def _seconds(start: datetime, end: datetime) -> float:
    return round((end - _aware(start)).total_seconds(), 2)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _end_attempt(out: _Out, outcome: str, now: datetime) -> None:
    """The transfer ends before anyone accepted."""
    out.set(phase="ended", outcome=outcome, ended_at=out.t.ended_at or now)


def _worker_left_ringing(out: _Out, now: datetime) -> None:
    """The worker left the conference while the professional's phone rang: stop ringing at
    once. Whether they pressed * or hung up, their Dial action or call status tells later
    (the transfer's outcome becomes `cancelled`, or the call's `abandoned`)."""
    if out.t.phase != "dialling":
        return
    _end_attempt(out, "abandoned", now)
    out.do(CancelLegs())


def _worker_abandoned(out: _Out, now: datetime) -> None:
    """The worker left while the professional's phone rang: stop ringing."""
    if out.t.phase != "dialling":
        return
    _end_attempt(out, "abandoned", now)
    out.do(CancelLegs(), CallOutcome("abandoned", over=("closed",)))


def _conversation_over(out: _Out, now: datetime) -> None:
    """The professional is gone: the conversation has ended (once)."""
    if out.t.phase == "connected":
        _close(out, now)
    t = out.t
    if t.worker == MENU:
        out.do(BringWorkerBack())
    elif (
        t.worker == TALKING
        and t.worker_conference
        and t.conference_sid
        and t.worker_conference != t.conference_sid
        and not t.citizen_present
    ):
        # The worker went back into a conference of their own: nobody else will come.
        out.do(EndConference(t.worker_conference))


def _citizen_gone(out: _Out, now: datetime) -> None:
    """A citizen left the conversation. Handed over (the worker is away), the professional
    would now be alone in it: the conversation is over (once)."""
    t = out.t
    if t.worker in (AWAY, GONE) and t.professional_present and not t.citizen_present:
        _close(out, now)
        out.do(EndConversation("citizen"))


def _close(out: _Out, now: datetime) -> None:
    """The conversation ends now (or ended at its first end): its duration is known."""
    t = out.t
    ended = t.ended_at or now
    out.set(
        phase="ended",
        ended_at=ended,
        duration_s=_seconds(t.accepted_at, ended) if t.accepted_at else None,
    )


def _on_leg_status(out: _Out, ev: LegStatus, now: datetime) -> None:
    leg = out.t.leg(ev.leg_id)
    if leg is None or not advances(leg.status, ev.status):
        return  # unknown, late or repeated: absorbed
    out.set_leg(leg.id, status=ev.status)
    if ev.status not in TERMINAL:
        return
    if leg.outcome is None:
        answered = leg.status in ("in-progress", "answered")
        out.set_leg(leg.id, outcome=leg_outcome(ev.status, answered, leg.accepted))
    if leg.kind != "professional":
        _citizen_gone(out, now)
        return
    if leg.accepted:
        _conversation_over(out, now)
    elif out.t.phase == "dialling":
        out.do(PlaceLeg(leg.position + 1))


def _on_joined(out: _Out, ev: Joined, now: datetime) -> None:
    t = out.t
    if ev.who != WORKER:
        leg = t.leg(ev.who)
        if leg is not None and leg.accepted and ev.conference_sid and not t.conference_sid:
            out.set(conference_sid=ev.conference_sid)
        return
    if ev.conference_sid:
        out.set(worker_conference=ev.conference_sid)
    t = out.t
    if (
        t.phase == "ended"
        and t.accepted_at is not None
        and t.worker == TALKING
        and ev.conference_sid
        and not t.citizen_present
    ):
        # Back in a conference after the professional left: alone. End it, so that the
        # worker's Dial action moves the call on.
        out.do(EndConference(ev.conference_sid))


def _on_left(out: _Out, ev: Left, now: datetime) -> None:
    if ev.who == WORKER:
        _worker_left_ringing(out, now)
        return
    leg = out.t.leg(ev.who)
    if leg is None or leg.left:
        return
    out.set_leg(leg.id, left=True)
    if leg.kind == "professional" and leg.accepted:
        _conversation_over(out, now)
    elif leg.kind == "citizen":
        _citizen_gone(out, now)


def _on_conference_ended(out: _Out, ev: ConferenceEnded, now: datetime) -> None:
    t = out.t
    if ev.conference_sid and t.conference_sid and ev.conference_sid != t.conference_sid:
        return  # a conference the worker was alone in: nothing to decide
    if t.phase == "dialling":
        _worker_left_ringing(out, now)  # only the worker was in it
    elif t.phase == "connected":
        prof = t.professional
        if prof is not None:
            out.set_leg(prof.id, left=True)
        _conversation_over(out, now)


def _on_worker_hung_up(out: _Out, ev: WorkerHungUp, now: datetime) -> None:
    t = out.t
    was = t.worker
    out.set(worker=GONE, worker_left_at=t.worker_left_at or now)
    if t.phase == "dialling":
        _worker_abandoned(out, now)
    elif t.accepted_at is None and t.outcome == "abandoned" and was != AWAY:
        # Their participant-leave came first and stopped the ringing: it was a hang-up.
        out.do(CallOutcome("abandoned", over=("closed",)))
    elif t.phase == "connected" and was != AWAY:
        if t.citizen_present:  # a hand-over after all: citizen and professional go on
            out.set(hold_wanted=False)
            out.do(Hold(False))
        else:
            out.do(EndConversation())
    out.do(Reply("silence"))


def _on_dial_ended(out: _Out, ev: DialEnded, now: datetime) -> None:
    t = out.t
    if t.phase == "dialling" or (t.accepted_at is None and t.outcome in ("abandoned", "cancelled")):
        # * while the professional's phone rang (the conference's participant-leave may have
        # ended the attempt a moment earlier): abort the transfer, keep the call.
        if t.phase == "dialling":
            out.do(CancelLegs())
        out.set(phase="ended", outcome="cancelled", ended_at=t.ended_at or now, worker=AWAY)
        out.do(Reply("aborted"))
    elif t.accepted_at is None:
        out.set(worker=AWAY)
        out.do(Reply("unanswered"))
    elif t.professional_present:
        out.set(worker=MENU, hold_wanted=True)
        out.do(Hold(True), Reply("handover-menu"))
    else:
        _conversation_over(out, now)
        out.set(worker=AWAY)
        out.do(StepState("done"), Reply("ended"))


def _on_handover(out: _Out, ev: Handover, now: datetime) -> None:
    t = out.t
    key = "3" if ev.key == "4" and not t.chain else ev.key
    if not t.professional_present:
        out.set(worker=AWAY)
        out.do(StepState("done"), Reply("ended"))
    elif key == "1":
        out.do(Reply("ask-citizen"))
    elif key in ("2", "4"):
        out.set(worker=AWAY, worker_left_at=t.worker_left_at or now)
        if t.citizen_present:
            out.set(hold_wanted=False)
            out.do(Hold(False))
        else:
            out.do(EndConversation())
        handed = "handed-over" if t.citizen_present else "ended-alone"
        out.do(StepState("done"), Reply(f"{handed}-next" if key == "4" else handed))
    else:
        _on_return(out, Return(), now)


def _on_return(out: _Out, ev: Return, now: datetime) -> None:
    if not out.t.professional_present:
        out.set(worker=AWAY)
        out.do(StepState("done"), Reply("ended"))
        return
    out.set(worker=TALKING, hold_wanted=False)
    out.do(Hold(False), Reply("back"))


def _on_accept(out: _Out, ev: Accept, now: datetime) -> None:
    t = out.t
    leg = t.leg(ev.leg_id)
    if leg is None:
        out.do(Reply("gone"))
    elif leg.accepted and t.phase == "connected":
        out.do(Reply("join"))  # a retried delivery of this very acceptance
    elif t.phase != "dialling" or not leg.present:
        out.do(Reply("taken" if t.phase == "connected" else "gone"))
    else:
        out.set(
            phase="connected",
            outcome="connected",
            accepted_at=now,
            time_to_answer_s=_seconds(t.created_at, now),
            minutes_saved=minutes_saved(t.public_wait_minutes, _aware(t.created_at), now),
            worker=TALKING if t.worker == WAITING else t.worker,
        )
        out.set_leg(leg.id, accepted=True, outcome="accepted")
        out.do(CallOutcome("connected", over=("*",)), StepState("connected"), Reply("join"))


def _on_decline(out: _Out, ev: Decline, now: datetime) -> None:
    t = out.t
    leg = t.leg(ev.leg_id)
    if leg is None or t.phase != "dialling":
        out.do(Reply("taken" if t.phase == "connected" else "gone"))
        return
    out.set_leg(leg.id, outcome="declined")
    out.do(PlaceLeg(leg.position + 1), Reply("declined"))


def _on_hunt_exhausted(out: _Out, ev: HuntExhausted, now: datetime) -> None:
    t = out.t
    if t.phase != "dialling":
        return
    outcomes = [o for o in ev.leg_outcomes if o]
    outcome = transfer_outcome(outcomes) if outcomes or not ev.deadline else "no-answer"
    _end_attempt(out, outcome, now)
    if ev.deadline:
        out.do(CancelLegs())
    if t.worker == WAITING:
        out.do(RedirectWorker())


_HANDLERS: dict[type, Callable[[_Out, Any, datetime], None]] = {
    LegStatus: _on_leg_status,
    Joined: _on_joined,
    Left: _on_left,
    ConferenceEnded: _on_conference_ended,
    WorkerHungUp: _on_worker_hung_up,
    DialEnded: _on_dial_ended,
    Handover: _on_handover,
    Return: _on_return,
    Accept: _on_accept,
    Decline: _on_decline,
    HuntExhausted: _on_hunt_exhausted,
}
