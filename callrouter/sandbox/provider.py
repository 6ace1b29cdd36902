"""A Twilio-compatible provider in miniature: calls, conferences and messages, executed in memory.

It serves the subset of Twilio's REST API that callrouter uses (see `api.py`) and executes
TwiML the way Twilio does: it fetches the service's webhooks with a valid
`X-Twilio-Signature`, follows Say, Play, Pause, Gather (keys and speech), Redirect, Dial with
Conference (wait URL, start/end on enter/exit, hangupOnStar) and Hangup, and sends call and
conference status callbacks with `SequenceNumber`.

The simulation is synchronous and deterministic: `run()` advances every call until all wait
for something only a person (a script, or the sandbox page) can give. Where Twilio's exact
behaviour cannot be known here, Twilio's documentation is followed and the spot says so.

Twilio promises no order between a call's status callbacks, the conference's participant
events and the requests a call makes for its next TwiML (a Dial action, a Gather's action),
and it may deliver a callback twice. With `shuffle=<seed>` the sandbox does the same, seeded:
the status and conference callbacks it would send go into an outbox, and `run()` delivers
them in a random order, interleaved with the calls' own steps (and, through `between`, with
the service's jobs), now and then twice; `run()` returns only when the outbox is empty. The
same seed gives the same order.

The parts live beside this module: the state as plain values (`state.py`), the conferences
(`conference.py`), the callback outbox and its shuffle mode (`outbox.py`) and the reading of
TwiML documents (`verbs.py`); `Sandbox` ties them together and runs the calls.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable

from callrouter.sandbox import verbs
from callrouter.sandbox.conference import Conferences, dial_flags, participant_flags
from callrouter.sandbox.outbox import Outbox, run_shuffled, shuffler
from callrouter.sandbox.state import (
    TERMINAL,
    Fetch,
    Phone,
    SimCall,
    SimConference,
    new_sid,
)

__all__ = ["TERMINAL", "Fetch", "Phone", "Sandbox", "SimCall", "SimConference"]


class Sandbox:
    def __init__(
        self,
        fetch: Fetch,
        account_sid: str,
        shuffle: int | random.Random | None = None,
        duplicates: float = 0.1,
        between: Callable[[], object] | None = None,
    ):
        """`shuffle`: a seed (or a Random) for delivering callbacks out of order (None: at
        once, in order);
        `duplicates`: how often a shuffled callback is delivered twice; `between`: called at
        random moments of a shuffled run, truthy when it did something (the sandbox's own
        runner runs the service's queued jobs there, as a worker process would meanwhile)."""
        self.fetch = fetch
        self.account_sid = account_sid
        self.outbox = Outbox(fetch, shuffler(shuffle), duplicates)
        self.between = between
        self.calls: dict[str, SimCall] = {}
        self.rooms = Conferences(account_sid, self.calls, self.outbox.send, self._end)
        self.phones: dict[str, Phone] = {}
        self.messages: list[dict] = []
        self.transcript: list[tuple[str, str]] = []
        # The same lines with the call each was heard on (the page shows one transcript per
        # call): (call sid, who, text).
        self.lines: list[tuple[str, str, str]] = []
        self.default_answer = "answer"  # how a phone not set up otherwise answers a ring

    @property
    def conferences(self) -> dict[str, SimConference]:
        """The conferences by FriendlyName."""
        return self.rooms.by_name

    # ------------------------------------------------------------------ phones

    def phone(self, number: str) -> Phone:
        if number not in self.phones:
            self.phones[number] = Phone(answer=self.default_answer)
        return self.phones[number]

    def dial_in(
        self,
        from_: str,
        to: str,
        url: str,
        status_callback: str | None = None,
        label: str = "medewerker",
    ) -> str:
        """A phone calls a number whose Voice URL is `url` (the internal number)."""
        call = SimCall(
            new_sid("CA"),
            from_,
            to,
            "inbound",
            label,
            url=url,
            status="ringing",
            status_callback=status_callback,
            status_events=("completed",),
        )
        self.calls[call.sid] = call
        call.pending = ("POST", url, {})
        call.status = "in-progress"
        return call.sid

    def hang_up(self, sid: str) -> None:
        """The person on this call hangs up."""
        call = self.calls.get(sid)
        if call is not None and not call.ended:
            self._end(call, "completed", caller_hung_up=True)

    def timeout(self, sid: str) -> bool:
        """A person waiting at a prompt says nothing: the Gather times out."""
        call = self.calls.get(sid)
        if call is None or call.ended or not call.verbs:
            return False
        if not verbs.is_gather(call.verbs[0]):
            return False
        self.phone(call.from_ if call.direction == "inbound" else call.to).inputs.append("")
        return True

    def press_star(self, sid: str) -> bool:
        """A party in a conference presses * (leaves it when the Dial has hangupOnStar)."""
        call = self.calls.get(sid)
        if call is None or call.conference is None or not call.hangup_on_star:
            return False
        self.rooms.leave(call, run_action=True)
        return True

    def answer(self, sid: str, how: str = "answer") -> bool:
        """A ringing phone is answered, rejected (busy), or left ringing until no-answer."""
        call = self.calls.get(sid)
        if call is None or call.ended or call.status != "ringing":
            return False
        if how in ("busy", "no-answer", "reject"):
            self._end(call, "busy" if how in ("busy", "reject") else "no-answer")
            return True
        self._status(call, "in-progress")
        if call.url:
            queued = list(call.verbs)  # a queued bridge join runs after the whisper
            call.verbs.clear()
            call.pending = ("POST", call.url, {})
            call.after_load = queued
        return True

    # ------------------------------------------------------------------ REST subset

    def create_call(self, form: dict) -> SimCall:
        to, from_ = form.get("To", ""), form.get("From", "")
        call = SimCall(
            new_sid("CA"),
            from_,
            to,
            "outbound-api",
            form.get("_label") or f"lijn {to}",
            url=form.get("Url"),
            status_callback=form.get("StatusCallback"),
            status_events=tuple(form.get("StatusCallbackEvent", "").split()) or ("completed",),
            timeout=int(form.get("Timeout") or 60),
        )
        self.calls[call.sid] = call
        self._ring(call)
        return call

    def update_call(self, sid: str, form: dict) -> SimCall | None:
        call = self.calls.get(sid)
        if call is None:
            return None
        status = form.get("Status")
        if status in ("canceled", "completed") and not call.ended:
            # Twilio: `canceled` ends only a queued or ringing call; `completed` any call.
            if status == "completed" or call.status in ("queued", "initiated", "ringing"):
                self._end(call, status if call.status != "in-progress" else "completed")
        elif form.get("Url") and not call.ended:
            self.rooms.leave(call, run_action=False)
            call.verbs.clear()
            call.pending = (form.get("Method", "POST"), form["Url"], {})
        return call

    def add_participant(self, conference: str, form: dict) -> SimCall:
        """Dial a number into a conference (by FriendlyName, as only creation allows)."""
        call = SimCall(
            new_sid("CA"),
            form.get("From", ""),
            form.get("To", ""),
            "outbound-api",
            f"deelnemer {form.get('To', '')}",
            status_callback=form.get("StatusCallback"),
            status_events=tuple(form.get("StatusCallbackEvent", "").split()) or ("completed",),
            timeout=int(form.get("Timeout") or 60),
        )
        self.calls[call.sid] = call
        call.verbs.append(("join", conference, participant_flags(form)))
        self._ring(call, then_join=True)
        return call

    def update_participant(self, conference_sid: str, call_sid: str, form: dict) -> bool:
        conf = self.rooms.by_sid(conference_sid)
        if conf is None or call_sid not in conf.members:
            return False
        hold = form.get("Hold")
        if hold is not None:
            on_hold = hold.lower() == "true"
            self.rooms.hold(conf, call_sid, on_hold)
            if on_hold and form.get("HoldUrl"):
                method = form.get("HoldMethod", "GET")  # Twilio's default for HoldMethod
                self._hear(self.calls[call_sid], method, form["HoldUrl"])
        return True

    def end_conference(self, conference_sid: str) -> bool:
        conf = self.rooms.by_sid(conference_sid)
        if conf is None:
            return False
        self.rooms.finish(conf)
        return True

    def send_message(self, form: dict) -> dict:
        msg = {
            "sid": new_sid("SM"),
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
        }
        self.messages.append(msg)
        self.transcript.append((f"sms aan {form.get('To')}", form.get("Body", "")))
        return msg

    # ------------------------------------------------------------------ running

    def run(self, max_steps: int = 2000) -> int:
        """Advance every call until all wait for a person; returns the number of steps."""
        if self.outbox.rng is not None:
            return run_shuffled(self.outbox, self.between, self._move_a_call, max_steps)
        steps = 0
        progressed = True
        while progressed and steps < max_steps:
            progressed = False
            for call in list(self.calls.values()):
                if call.ended:
                    continue
                if self._step(call):
                    progressed = True
                    steps += 1
        return steps

    def _move_a_call(self, rng: random.Random) -> bool:
        """Advance one call that can move, trying them in a random order."""
        calls = [c for c in self.calls.values() if not c.ended]
        rng.shuffle(calls)
        return any(self._step(call) for call in calls)

    def _step(self, call: SimCall) -> bool:
        """Fetch the call's next document, or carry out its next verb; False: it waits."""
        if call.pending is not None:
            method, url, extra = call.pending
            call.pending = None
            self._load(call, method, url, extra)
            return True
        if not call.verbs:
            if call.conference is None and call.status == "in-progress":
                self._end(call, "completed")  # the document ran out: Twilio hangs up
                return True
            return False
        verb = call.verbs[0]
        if isinstance(verb, tuple):  # a join queued by add_participant or Dial/Number
            if call.status != "in-progress":
                return False
            call.verbs.popleft()
            self._join(call, verb[1], verb[2], label="deelnemer")
            return True
        if verb.tag == "Gather":
            return self._gather(call, verb)
        call.verbs.popleft()
        self._carry_out(call, verb)
        return True

    # ------------------------------------------------------------------ TwiML verbs

    def _carry_out(self, call: SimCall, verb: ET.Element) -> None:
        """Carry out a verb that needs nobody: Say, Play, Pause, Redirect, Hangup, Dial."""
        tag = verb.tag
        if tag == "Say":
            self._say(call, verb.text)
        elif tag in ("Play", "Pause"):
            pass
        elif tag == "Redirect":
            call.pending = (verb.get("method", "POST"), (verb.text or "").strip(), {})
        elif tag == "Hangup":
            self._end(call, "completed")
        elif tag == "Dial":
            self._dial(call, verb)

    def _gather(self, call: SimCall, verb: ET.Element) -> bool:
        if verb.get("sandbox-seen") is None:  # a new prompt: what it says, and how long
            verb.set("sandbox-seen", "1")  # a person needs to hear it
            call.gather_seq += 1
            call.prompt_words = 0
        for child in list(verb):
            if child.tag == "Say":
                self._say(call, child.text)
                call.prompt_words += len((child.text or "").split())
            verb.remove(child)
        phone = self.phone(call.from_ if call.direction == "inbound" else call.to)
        if not phone.inputs:
            return False  # waits for a person (the page) or for the script's timeout
        given = phone.inputs.popleft()
        call.verbs.popleft()
        if not given and verb.get("actionOnEmptyResult") != "true":
            return True  # Twilio goes on with the next verb when nothing was entered
        call.pending = (verb.get("method", "POST"), verb.get("action"), verbs.gathered(given))
        return True

    def _dial(self, call: SimCall, verb: ET.Element) -> None:
        conf = verb.find("Conference")
        number = verb.find("Number")
        if conf is None and number is not None:
            self._dial_number(call, verb, number)
            return
        if conf is None:  # Client, Sip, Queue ...: not part of this sandbox
            self._say(call, "[niet ondersteund in de sandbox: Dial zonder Conference/Number]")
            self._end(call, "completed")
            return
        call.dial_action = verb.get("action")
        call.hangup_on_star = verb.get("hangupOnStar") == "true"
        self._join(
            call,
            (conf.text or "").strip(),
            dial_flags(conf),
            label=conf.get("participantLabel") or call.label,
        )

    def _dial_number(self, call: SimCall, verb: ET.Element, number: ET.Element) -> None:
        """<Dial><Number url=...>: ring the number; on answer its `url` TwiML (a whisper) runs
        on the callee alone, then the two are bridged (modelled as a two-party conference,
        ended when either leaves, as Twilio ends a bridge)."""
        bridge = f"bridge-{call.sid}"
        call.dial_action = verb.get("action")
        call.hangup_on_star = verb.get("hangupOnStar") == "true"
        child = SimCall(
            new_sid("CA"),
            call.to,
            (number.text or "").strip(),
            "outbound-dial",
            f"lijn {(number.text or '').strip()}",
            url=number.get("url"),
            status_callback=number.get("statusCallback"),
            status_events=tuple((number.get("statusCallbackEvent") or "completed").split()),
            timeout=int(verb.get("timeout") or 30),
        )
        self.calls[child.sid] = child
        flags = {"start": True, "end": True, "hold": False}
        self._join(call, bridge, {**flags, "start": False}, label=call.label)
        child.verbs.append(("join", bridge, flags))
        self._ring(child, then_join=True)
        if child.ended:  # busy or not answered: the caller's Dial ends
            self.rooms.leave(call, run_action=True)

    def _join(self, call: SimCall, name: str, flags: dict, label: str) -> None:
        """Enter a conference; until it starts, its wait URL (a Dial's) plays."""
        conf = self.rooms.join(call, name, flags, label)
        if not conf.started and flags.get("wait"):
            self._hear(call, flags.get("wait_method", "POST"), flags["wait"])

    # ------------------------------------------------------------------ internals

    def _say(self, call: SimCall, text: str | None) -> None:
        if text and text.strip():
            self._note(call, text.strip())

    def _note(self, call: SimCall, text: str) -> None:
        self.transcript.append((call.label, text))
        self.lines.append((call.sid, call.label, text))

    def _params(self, call: SimCall) -> dict:
        return {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.from_,
            "To": call.to,
            "Called": call.to,
            "Caller": call.from_,
            "CallStatus": call.status,
            "Direction": call.direction,
            "ApiVersion": "2010-04-01",
        }

    def _load(self, call: SimCall, method: str, url: str, extra: dict) -> None:
        status, body = self.fetch(method, url, {**self._params(call), **extra})
        root = verbs.parse(status, body)
        if root is None or root.tag != "Response":
            # Twilio would request the Fallback URL here; the sandbox says it and hangs up.
            self._note(call, f"[toepassingsfout: HTTP {status}]")
            self._end(call, "failed")
            return
        call.verbs = deque(list(root) + getattr(call, "after_load", []))
        call.after_load = []

    def _hear(self, call: SimCall, method: str, url: str) -> None:
        """Play wait or hold TwiML once (Say only) into the transcript; never breaks a call."""
        status, body = self.fetch(method, url, self._params(call))
        root = verbs.parse(status, body)
        for say in root.iter("Say") if root is not None else ():
            self._say(call, say.text)

    def _status(self, call: SimCall, status: str, extra: dict | None = None) -> None:
        call.status = status
        event = {"in-progress": "answered"}.get(status, status)
        if status in TERMINAL:
            event = "completed"
        if not call.status_callback or event not in call.status_events:
            return
        call.sequence += 1
        self.outbox.send(
            call.status_callback,
            {
                **self._params(call),
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(call.sequence),
                **(extra or {}),
            },
        )

    def _ring(self, call: SimCall, then_join: bool = False) -> None:
        self._status(call, "initiated")
        self._status(call, "ringing")
        phone = self.phone(call.to)
        if phone.answer == "ask":
            return  # it rings until a person answers or rejects it (or it times out)
        self.answer(call.sid, phone.answer)

    def _end(self, call: SimCall, status: str, caller_hung_up: bool = False) -> None:
        if call.ended:
            return
        call.ended = True
        if call.conference is not None:
            self.rooms.leave(call, run_action=False)
        if caller_hung_up and call.dial_action:
            # Twilio requests the Dial action when the caller hangs up during a Dial (nobody
            # hears its answer: as late as any callback).
            self.outbox.send(
                call.dial_action,
                {**self._params(call), "CallStatus": "completed", "DialCallStatus": "completed"},
            )
        call.verbs.clear()
        call.pending = None
        self._status(call, status)
