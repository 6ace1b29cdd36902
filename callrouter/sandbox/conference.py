"""Conferences in the sandbox: who joins and leaves them, when they start and end, and their
status callbacks (participant and conference events, with `SequenceNumber`).

A member joins with flags: `start` and `end` (start/end the conference on enter/exit), `hold`,
and from `<Conference>` also `wait` and `wait_method` (the wait URL) and `callback` and
`events` (the conference's status callback and the events it wants).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from callrouter.sandbox.state import SimCall, SimConference, new_sid


def dial_flags(conf: ET.Element) -> dict:
    """A member's flags from a `<Dial><Conference>` element."""
    return {
        "start": conf.get("startConferenceOnEnter", "true") == "true",
        "end": conf.get("endConferenceOnExit", "false") == "true",
        "hold": False,
        "wait": conf.get("waitUrl"),
        "wait_method": conf.get("waitMethod", "POST"),
        "callback": conf.get("statusCallback"),
        "events": tuple((conf.get("statusCallbackEvent") or "").split()),
    }


def participant_flags(form: dict) -> dict:
    """A member's flags from the REST request that adds a participant."""
    return {
        "start": form.get("StartConferenceOnEnter", "true") == "true",
        "end": form.get("EndConferenceOnExit", "false") == "true",
        "hold": False,
    }


class Conferences:
    """The conferences by FriendlyName (a name ended is a new conference when joined again).

    `send` sends a status callback (the outbox); `end_call(call, status)` ends a member's call
    when the conference ends under it and it has no Dial action to go on with."""

    def __init__(
        self,
        account_sid: str,
        calls: dict[str, SimCall],
        send: Callable[[str, dict], None],
        end_call: Callable[[SimCall, str], None],
    ):
        self.account_sid = account_sid
        self.calls = calls
        self.send = send
        self.end_call = end_call
        self.by_name: dict[str, SimConference] = {}

    def by_sid(self, sid: str) -> SimConference | None:
        return next((c for c in self.by_name.values() if c.sid == sid), None)

    def join(self, call: SimCall, name: str, flags: dict, label: str) -> SimConference:
        """The call enters the conference `name` (started now if its flags say so)."""
        conf = self.by_name.get(name)
        if conf is None or conf.ended:
            conf = SimConference(
                name, new_sid("CF"), flags.get("callback"), flags.get("events", ())
            )
            self.by_name[name] = conf
        if flags.get("callback") and not conf.status_callback:
            conf.status_callback, conf.events = flags["callback"], flags.get("events", ())
        conf.members[call.sid] = flags
        call.conference = name
        self.event(conf, "participant-join", call.sid, label)
        if flags.get("start") and not conf.started:
            conf.started = True
            self.event(conf, "conference-start", "")
        return conf

    def hold(self, conf: SimConference, call_sid: str, hold: bool) -> None:
        conf.members[call_sid]["hold"] = hold
        self.event(conf, "participant-hold" if hold else "participant-unhold", call_sid)

    def leave(self, call: SimCall, run_action: bool) -> None:
        """The call leaves its conference; with `run_action` its Dial action comes next."""
        name = call.conference
        if name is None:
            return
        conf = self.by_name[name]
        flags = conf.members.pop(call.sid, {})
        call.conference = None
        self.event(conf, "participant-leave", call.sid)
        if run_action and call.dial_action and not call.ended:
            call.follow_dial_action()
        if (flags.get("end") and conf.started) or not conf.members:
            self.finish(conf)

    def finish(self, conf: SimConference) -> None:
        """The conference ends: every member leaves it, to its Dial action or hung up."""
        if conf.ended:
            return
        conf.ended = True
        for sid in list(conf.members):
            member = self.calls[sid]
            conf.members.pop(sid)
            member.conference = None
            self.event(conf, "participant-leave", sid)
            if member.dial_action:
                member.follow_dial_action()
            elif not member.ended:
                self.end_call(member, "completed")
        self.event(conf, "conference-end", "")

    def event(
        self, conf: SimConference, event: str, call_sid: str, label: str | None = None
    ) -> None:
        short = event.split("-", 1)[-1]  # statusCallbackEvent names: start end join leave ...
        if not conf.status_callback or short not in conf.events:
            return
        conf.sequence += 1
        params = {
            "ConferenceSid": conf.sid,
            "FriendlyName": conf.name,
            "AccountSid": self.account_sid,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(conf.sequence),
        }
        if call_sid:
            params["CallSid"] = call_sid
        if label:
            params["ParticipantLabel"] = label
        self.send(conf.status_callback, params)
