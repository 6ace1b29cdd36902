"""Whole calls in any order Twilio allows: the harness of `test_call_orders.py`.

The sandbox provider executes the service's TwiML as Twilio does; here it reaches the
webhooks through Flask's test client, and the service's REST requests (the twilio SDK, over
`responses`) reach the sandbox's own REST blueprint. With a seed the sandbox delivers the
status and conference callbacks out of order, sometimes twice, and runs the service's jobs at
random moments in between, in random order: a worker pool under load. The jobs run in this
process (an in-memory queue instead of RQ) so that hundreds of orders per call fit in a test
run; the end-to-end tests run the same calls through real RQ workers.

What a person does (answer, press a key, hang up) happens when nothing else moves, as in a
real call, where people are slow next to webhooks.
"""

from __future__ import annotations

import logging
import random
import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlparse

import responses
from sqlalchemy import select

from callrouter.models import Call, CallbackRequest, CaseStep, Leg, Transfer
from callrouter.sandbox import api as sandbox_api
from callrouter.sandbox.provider import Sandbox
from callrouter.signatures import sign

from conftest import ACCOUNT, API, INTERNAL, PUBLIC, TOKEN


class InlineQueue:
    """What the service asks of an RQ queue, kept in memory; the harness runs the jobs."""

    def __init__(self):
        self.jobs: list[tuple] = []
        self.timers: list[tuple] = []

    def enqueue(self, func, *args, **_options):
        self.jobs.append((func, args))

    def enqueue_in(self, _delay, func, *args, **_options):
        self.timers.append((func, args))

    def enqueue_at(self, _moment, func, *args, **_options):
        self.timers.append((func, args))


@dataclass
class Party:
    number: str
    answer: str = "answer"  # answer | busy | no-answer | ask (rings until the script acts)
    keys: list[str] = field(default_factory=list)


class Errors(logging.Handler):
    """The service's logged errors (a webhook that failed answers calm TwiML all the same)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}: {record.getMessage()}")


class Harness:
    """One app, many calls: each call gets a fresh sandbox (and its own worker number)."""

    def __init__(self, app):
        self.errors = Errors()
        logging.getLogger("callrouter").addHandler(self.errors)
        self.app = app
        self.svc = app.extensions["callrouter"]
        self.queue = InlineQueue()
        self.svc.queue = lambda name="calls": self.queue
        self.hooks = app.test_client()
        self.rest = app.test_client()
        app.extensions["callrouter.sandbox.auth"] = (ACCOUNT, TOKEN)
        app.register_blueprint(sandbox_api.bp)
        self.mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self.mock.add_callback(
            responses.POST, re.compile(re.escape(API) + r"/.*"), callback=self._forward
        )
        self.mock.add_callback(
            responses.GET, re.compile(re.escape(API) + r"/.*"), callback=self._forward
        )
        self.mock.start()
        self.sandbox: Sandbox | None = None
        self.rng: random.Random | None = None
        self.numbers = iter(range(100, 1000))

    def close(self) -> None:
        logging.getLogger("callrouter").removeHandler(self.errors)
        self.mock.stop()
        self.mock.reset()

    def worker_number(self) -> str:
        """A front-desk worker of Utrecht (+3130286*) of its own for each call: a callback
        request or a PIN lock of one call never shapes the next."""
        return f"+31302860{next(self.numbers)}"

    def start(self, parties: list[Party], seed: random.Random | int | None) -> None:
        self.queue.jobs.clear()
        self.queue.timers.clear()
        self.errors.seen.clear()
        self.rng = (
            seed
            if isinstance(seed, random.Random)
            else (random.Random(seed) if seed is not None else None)
        )
        self.sandbox = Sandbox(
            self._fetch,
            ACCOUNT,
            shuffle=self.rng,
            between=self._one_job if self.rng is not None else None,
        )
        self.app.extensions["callrouter.sandbox"] = self.sandbox
        self.alone: list[str] = []
        for p in parties:
            phone = self.sandbox.phone(p.number)
            phone.answer, phone.inputs = p.answer, deque(p.keys)

    # -------------------------------------------------------------- the wires

    def _fetch(self, method: str, url: str, params: dict) -> tuple[int, str]:
        path = url[len(PUBLIC) :]
        if method.upper() == "GET":
            full = url + ("&" if "?" in url else "?") + urlencode(params)
            resp = self.hooks.get(
                full[len(PUBLIC) :], headers={"X-Twilio-Signature": sign(TOKEN, full)}
            )
        else:
            resp = self.hooks.post(
                path, data=params, headers={"X-Twilio-Signature": sign(TOKEN, url, params)}
            )
        body = resp.get_data(as_text=True)
        resp.close()  # as a WSGI server does: the work deferred until after the response
        return resp.status_code, body

    def _forward(self, request):
        parts = urlparse(request.url)
        path = "/sandbox/api" + parts.path + (f"?{parts.query}" if parts.query else "")
        body = request.body or b""
        resp = self.rest.open(
            path,
            method=request.method,
            data=body if isinstance(body, bytes) else body.encode(),
            headers={
                "Authorization": request.headers.get("Authorization", ""),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        return resp.status_code, {"Content-Type": "application/json"}, resp.get_data()

    # -------------------------------------------------------------- running

    def _one_job(self) -> bool:
        """A worker takes one queued job, not necessarily the oldest."""
        if not self.queue.jobs:
            return False
        index = self.rng.randrange(len(self.queue.jobs)) if self.rng else 0
        func, args = self.queue.jobs.pop(index)
        with self.app.app_context():
            func(*args)
        return True

    def settle(self, rounds: int = 300) -> None:
        """Run calls, callbacks and jobs until nothing moves; a prompt nobody answers times
        out. Checks at every standstill that nobody is alone in a conference."""
        sb = self.sandbox
        for _ in range(rounds):
            moved = sb.run()
            while self._one_job():
                moved += 1 + sb.run()
            if moved:
                continue
            self._check_nobody_alone()
            waiting = [
                c.sid
                for c in sb.calls.values()
                if not c.ended
                and c.verbs
                and not isinstance(c.verbs[0], tuple)
                and c.verbs[0].tag == "Gather"
            ]
            if not waiting:
                return
            for sid in waiting:
                sb.timeout(sid)
        raise AssertionError("the call did not settle")

    def _check_nobody_alone(self) -> None:
        """Alone in a conference that has started: nobody else comes. (A professional on
        hold while the worker is in the * menu waits for the worker, who comes back.)"""
        for conf in self.sandbox.conferences.values():
            if conf.started and not conf.ended and len(conf.members) == 1:
                ((sid, flags),) = conf.members.items()
                if not flags.get("hold"):
                    self.alone.append(self.sandbox.calls[sid].label)

    def fire_timers(self, name: str) -> int:
        """The jobs planned for later whose function is `name`, run now (their time came)."""
        due = [t for t in self.queue.timers if t[0].__name__ == name]
        self.queue.timers[:] = [t for t in self.queue.timers if t[0].__name__ != name]
        self.queue.jobs.extend(due)
        return len(due)

    # -------------------------------------------------------------- people

    def dial_in(self, number: str, keys: list[str]) -> str:
        self.sandbox.phone(number).inputs = deque(keys)
        return self.sandbox.dial_in(
            number,
            INTERNAL,
            PUBLIC + "/voice/incoming",
            status_callback=PUBLIC + "/voice/status/call",
        )

    def calls_to(self, number: str) -> list:
        return [c for c in self.sandbox.calls.values() if c.to == number]

    def live(self, number: str):
        return next((c for c in self.calls_to(number) if not c.ended), None)

    def press(self, sid: str, *keys: str) -> None:
        call = self.sandbox.calls[sid]
        number = call.from_ if call.direction == "inbound" else call.to
        self.sandbox.phone(number).inputs.extend(keys)

    def star(self, sid: str) -> None:
        assert self.sandbox.press_star(sid), "not in a conference with hangupOnStar"

    def hang_up(self, sid: str) -> None:
        self.sandbox.hang_up(sid)

    def hang_up_everyone(self) -> None:
        for call in list(self.sandbox.calls.values()):
            self.sandbox.hang_up(call.sid)
        self.settle()

    def together(self, *sids: str) -> bool:
        """The calls are in one started conference."""
        calls = [self.sandbox.calls[s] for s in sids]
        names = {c.conference for c in calls}
        if len(names) != 1 or None in names:
            return False
        return self.sandbox.conferences[names.pop()].started

    # -------------------------------------------------------------- what is left

    def outcome(self, worker_sids: list[str]) -> dict:
        """The stored course of the calls: what must not depend on the order."""
        with self.svc.sessions() as s:
            calls = s.scalars(
                select(Call)
                .where(Call.call_sid.in_(worker_sids))
                .order_by(Call.received_at, Call.id)
            ).all()
            ids = [c.id for c in calls]
            transfers = s.scalars(
                select(Transfer)
                .where(Transfer.call_id.in_(ids))
                .order_by(Transfer.created_at, Transfer.step)
            ).all()
            out = {
                "calls": [(c.outcome, c.caller_org, c.line_id) for c in calls],
                "transfers": [],
                "steps": [],
                "callbacks": [],
            }
            for tr in transfers:
                legs = s.scalars(
                    select(Leg).where(Leg.transfer_id == tr.id).order_by(Leg.kind, Leg.position)
                ).all()
                out["transfers"].append(
                    (
                        tr.line_id,
                        tr.step,
                        tr.state,
                        tr.outcome,
                        tr.accepted_at is not None,
                        [(lg.kind, lg.position, lg.outcome, lg.status) for lg in legs],
                    )
                )
            case_ids = {c.case_id for c in calls if c.case_id}
            if case_ids:
                steps = s.scalars(
                    select(CaseStep)
                    .where(CaseStep.case_id.in_(case_ids))
                    .order_by(CaseStep.position)
                ).all()
                out["steps"] = [(st.position, st.line_id, st.state) for st in steps]
            cbs = s.scalars(
                select(CallbackRequest)
                .where(CallbackRequest.call_id.in_(ids))
                .order_by(CallbackRequest.line_id)
            ).all()
            out["callbacks"] = [(cb.line_id, cb.reason, cb.state, cb.outcome) for cb in cbs]
        sb = self.sandbox
        out["dialled"] = sorted(c.to for c in sb.calls.values() if c.direction != "inbound")
        out["messages"] = len(sb.messages)
        out["still_up"] = sorted(c.label for c in sb.calls.values() if not c.ended)
        out["alone"] = sorted(set(self.alone))
        out["errors"] = list(self.errors.seen)
        return out
