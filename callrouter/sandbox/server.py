"""The sandbox as a server of its own: the REST subset, and `/sandbox`, phones in the browser.

`make run` starts it beside the service when no Twilio credentials are set: the service talks
to it through `TWILIO_API_BASE_URL`, and it reaches the service's webhooks over HTTP like
Twilio. A driver thread advances the calls and times out prompts nobody answers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlencode

import requests
from flask import Flask, jsonify, render_template, request

from callrouter.dashboard.labels import STATUSES
from callrouter.flows import routing
from callrouter.sandbox import api, verbs
from callrouter.sandbox.provider import Fetch, Sandbox
from callrouter.signatures import sign

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC = Path(__file__).resolve().parent.parent / "static"
UTRECHT_CSS = ROOT / "node_modules" / "@utrecht" / "component-library-css" / "dist"


# A calm text-to-speech voice says about 150 words a minute: a prompt's timeout starts once
# it has been said, as on a real phone (the sandbox itself says everything at once).
WORDS_PER_SECOND = 2.5


class Driver:
    """Advances the sandbox in the background; a Gather times out as its `timeout` says,
    counted from the moment its prompt would have been spoken; `hold` (the page's switch for
    a person who reads at their own pace) keeps every prompt waiting. Phones other than the
    desk's ring until a person on the page acts, or answer by themselves as `auto` says
    (professionals then also accept at once)."""

    def __init__(self, sandbox: Sandbox, lock: threading.Lock, ring_timeout: float = 20):
        self.sandbox, self.lock = sandbox, lock
        self.waiting_since: dict[str, tuple[int, float]] = {}  # sid -> (prompt, since)
        self.ringing_since: dict[str, float] = {}
        self.ring_timeout = ring_timeout
        self.hold = False
        self.auto = {"professional": False, "other": True}
        self.professionals: frozenset[str] = frozenset()
        self.pressed: dict[str, int] = {}  # sid -> the prompt `auto` answered
        self.stop = threading.Event()

    def loop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                try:
                    self.tick(time.monotonic())
                except Exception:  # a sandbox must keep running for the page
                    import logging

                    logging.getLogger(__name__).exception("sandbox step failed")
            self.stop.wait(0.15)

    def tick(self, now: float) -> None:
        self.sandbox.run()
        for call in self.sandbox.calls.values():
            if call.ended:
                continue
            gather = call.verbs[0] if call.verbs and verbs.is_gather(call.verbs[0]) else None
            if gather is None:
                self.waiting_since.pop(call.sid, None)
            else:
                self._prompt(call, gather, now)
            if call.direction != "inbound":
                self._outbound(call, gather, now)

    def _prompt(self, call, gather, now: float) -> None:
        seq, since = self.waiting_since.get(call.sid, (-1, now))
        if seq != call.gather_seq:  # a new prompt: its time starts now
            seq, since = call.gather_seq, now
            self.waiting_since[call.sid] = (seq, since)
        speaking = call.prompt_words / WORDS_PER_SECOND
        if self.hold:
            self.waiting_since[call.sid] = (seq, now)  # released: its full time again
        elif now - since > speaking + float(gather.get("timeout") or 5):
            self.sandbox.timeout(call.sid)
            self.waiting_since.pop(call.sid, None)

    def _outbound(self, call, gather, now: float) -> None:
        kind = "professional" if call.to in self.professionals else "other"
        if call.status == "ringing":
            if self.auto[kind]:
                self.sandbox.answer(call.sid)
                return
            since = self.ringing_since.setdefault(call.sid, now)
            if now - since > min(call.timeout, self.ring_timeout):
                self.sandbox.answer(call.sid, "no-answer")
        elif gather is not None and kind == "professional" and self.auto[kind]:
            if self.pressed.get(call.sid) != call.gather_seq:  # the whisper: accept
                self.pressed[call.sid] = call.gather_seq
                self.sandbox.phone(call.to).inputs = deque(["1"])


def service_call_log(svc, limit: int = 15):
    """The service's newest calls as the page shows them: in Dutch, organisations by name,
    masked numbers only."""
    from callrouter.dashboard.labels import OUTCOMES

    def rows():
        from sqlalchemy import select

        from callrouter.models import Call

        with svc.sessions() as s:
            calls = s.scalars(select(Call).order_by(Call.received_at.desc()).limit(limit)).all()
        d = svc.directory
        return [
            {
                "time": c.received_at.astimezone(d.tz).strftime("%H:%M:%S"),
                "caller": _org_name(d, c.caller_org),
                "from": c.from_masked or "-",
                "line": _line_name(d, c.line_id),
                "urgent": c.urgent,
                "consent": c.consent,
                "outcome": OUTCOMES.get(c.outcome or "", c.outcome) if c.outcome else "bezig",
            }
            for c in calls
        ]

    return rows


def _org_name(d, org_id: str | None) -> str:
    org = d.organisation(org_id) or d.caller(org_id)
    return org.name if org is not None else "-"


def _line_name(d, line_id: str | None) -> str:
    line = d.line(line_id)
    if line is None:
        return "-"
    return f"{_org_name(d, line.organisation_id)}: {line.topic}"


def create_sandbox_app(
    service_base: str,
    token: str,
    account_sid: str,
    directory,
    ring_timeout: float = 20,
    clock_file=None,
    after_clock=None,
    call_log=None,
) -> Flask:
    """`clock_file` is the service's sandbox clock (instance/sandbox-clock); `after_clock` is
    called after the clock moved (it queues the service's sweep, which starts what is due);
    `call_log()` returns the service's newest call-log rows for the page."""
    app = Flask(__name__)
    sandbox = Sandbox(signed_fetch(token), account_sid)
    # Every phone but the desk's rings until a person on the page acts, or the driver
    # answers it (the page's "automatically" choices).
    sandbox.default_answer = "ask"
    lock = threading.Lock()
    app.extensions["callrouter.sandbox"] = sandbox
    app.extensions["callrouter.sandbox.lock"] = lock
    app.extensions["callrouter.sandbox.auth"] = (account_sid, token)
    app.register_blueprint(api.bp)
    driver = Driver(sandbox, lock, ring_timeout)
    driver.professionals = frozenset(
        n for line in directory.lines for n in (*line.numbers, *line.urgent_numbers)
    )
    app.extensions["callrouter.sandbox.driver"] = driver
    threading.Thread(target=driver.loop, daemon=True, name="sandbox-driver").start()
    view = PageView(sandbox, driver, directory, call_log, clock_file)
    _add_page_routes(app, lock, view)
    _add_phone_routes(app, sandbox, lock, directory, service_base, driver)
    _add_clock_route(app, directory, clock_file, after_clock)
    return app


def signed_fetch(token: str) -> Fetch:
    """How the sandbox requests the service's webhooks: over HTTP, signed as Twilio signs."""
    http = requests.Session()

    def fetch(method: str, url: str, params: dict) -> tuple[int, str]:
        if method.upper() == "GET":
            full = url + ("&" if "?" in url else "?") + urlencode(params)
            resp = http.get(full, headers={"X-Twilio-Signature": sign(token, full)}, timeout=15)
        else:
            resp = http.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": sign(token, url, params)},
                timeout=15,
            )
        return resp.status_code, resp.text

    return fetch


class PageView:
    """What the page shows, in Dutch: the calls with their parties and prompts, the lines
    each call heard (one transcript per call), the choices, the sandbox's clock, the
    service's call log."""

    def __init__(self, sandbox: Sandbox, driver: Driver, directory, call_log, clock_file):
        self.sandbox, self.driver, self.directory = sandbox, driver, directory
        self.call_log, self.clock_file = call_log, clock_file

    def who(self, call) -> str:
        d = self.directory
        if call.direction == "inbound":
            staff = routing.identify_staff(d, call.from_)
            if staff is not None:
                return f"Professional van {staff.name}"
            return "Medewerker van de gemeente"
        line = next((ln for ln in d.lines if call.to in (*ln.numbers, *ln.urgent_numbers)), None)
        if line is not None:
            return f"Professional van {_line_name(d, line.id)}"
        if routing.identify(d, call.to) is not None:
            return "Medewerker van de gemeente (wordt gebeld)"
        return "Inwoner"

    def state(self, since: int = 0) -> dict:
        sb = self.sandbox
        calls = []
        for c in sb.calls.values():
            waiting = bool(c.verbs) and verbs.is_gather(c.verbs[0]) and not c.ended
            calls.append(
                {
                    "sid": c.sid,
                    "who": self.who(c),
                    "number": c.from_ if c.direction == "inbound" else c.to,
                    "inbound": c.direction == "inbound",
                    "status": STATUSES.get(c.status, c.status),
                    "ringing": c.status == "ringing" and not c.ended,
                    "ended": c.ended,
                    "in_conference": c.conference is not None,
                    "waiting": waiting,
                    "gather": c.gather_seq,
                }
            )
        names = {c["sid"]: c["who"] for c in calls}
        lines = [
            {"n": i, "sid": sid, "who": names.get(sid, who), "text": text}
            for i, (sid, who, text) in enumerate(sb.lines)
            if i >= since
        ]
        desks = [c for c in sb.calls.values() if c.direction == "inbound"]
        live = [c for c in desks if not c.ended]
        desk = (live or desks or [None])[-1]
        return {
            "calls": calls,
            "lines": lines,
            "desk": desk.sid if desk is not None else None,
            "hold": self.driver.hold,
            "auto": dict(self.driver.auto),
            "clock": self.now().astimezone(self.directory.tz).strftime("%d-%m-%Y %H:%M"),
            "log": self.call_log() if self.call_log is not None else [],
        }

    def now(self):
        """The sandbox clock: real time plus the offset the trainer moved it by."""
        from datetime import UTC, datetime, timedelta

        shift = 0.0
        if self.clock_file is not None:
            try:
                shift = float(Path(self.clock_file).read_text().strip() or 0)
            except (OSError, ValueError):
                shift = 0.0
        return datetime.now(UTC) + timedelta(seconds=shift)


def _add_page_routes(app: Flask, lock: threading.Lock, view: PageView) -> None:
    """The page itself, its style sheets, and the state it polls."""
    directory = view.directory

    @app.get("/sandbox/assets/<name>")
    def assets(name):
        """The Utrecht component CSS (installed from npm at setup) and our own tokens."""
        from flask import abort, send_from_directory

        if name == "utrecht.css":
            return send_from_directory(UTRECHT_CSS, "index.css", max_age=3600)
        if name == "callrouter-tokens.css":
            return send_from_directory(STATIC, name, max_age=3600)
        abort(404)

    @app.get("/sandbox")
    def page():
        def first(numbers, prefixes):
            return numbers[0] if numbers else prefixes[0] + "0000"

        callers = [(c.name, first(c.numbers, c.prefixes)) for c in directory.callers]
        staff = [
            (f"Professional van {o.name}", first(o.staff_numbers, o.staff_prefixes))
            for o in directory.organisations
            if o.staff_numbers or o.staff_prefixes
        ]
        return render_template(
            "sandbox.html", callers=callers, staff=staff, internal=directory.internal_number
        )

    @app.get("/sandbox/state")
    def get_state():
        since = request.args.get("since", "0")
        with lock:
            return jsonify(view.state(int(since) if since.isdigit() else 0))


def _add_phone_routes(
    app: Flask, sandbox: Sandbox, lock: threading.Lock, directory, service_base: str, driver
) -> None:
    """What the people on the page do: dial in, press keys or speak, answer, refuse, hang
    up; and the page's choices (hold the prompts, answer automatically)."""

    @app.post("/sandbox/dial")
    def dial():
        number = request.form.get("from", "")
        with lock:
            sid = sandbox.dial_in(
                number,
                directory.internal_number,
                service_base + "/voice/incoming",
                status_callback=service_base + "/voice/status/call",
            )
        return jsonify(sid=sid)

    @app.post("/sandbox/input")
    def give_input():
        """A key (or words) for the prompt waiting on the call. With `gather` (the page
        sends the prompt it showed), a key meant for a prompt that is no longer waiting is
        refused: it never reaches the next one."""
        sid, value = request.form.get("sid", ""), request.form.get("value", "")
        meant = request.form.get("gather")
        with lock:
            call = sandbox.calls.get(sid)
            if call is None or call.ended:
                return jsonify(ok=False, error="Dit gesprek is beëindigd."), 404
            if value == "*" and call.conference is not None:
                sandbox.press_star(sid)
                return jsonify(ok=True)
            waiting = bool(call.verbs) and verbs.is_gather(call.verbs[0])
            if meant is not None and (not waiting or meant != str(call.gather_seq)):
                return jsonify(ok=False, error="Er wacht nu geen vraag op deze toets."), 409
            phone = sandbox.phone(call.from_ if call.direction == "inbound" else call.to)
            phone.inputs = deque([value])
        return jsonify(ok=True)

    @app.post("/sandbox/answer")
    def answer():
        sid, how = request.form.get("sid", ""), request.form.get("how", "answer")
        with lock:
            return jsonify(ok=sandbox.answer(sid, how))

    @app.post("/sandbox/hangup")
    def hangup():
        with lock:
            sandbox.hang_up(request.form.get("sid", ""))
        return jsonify(ok=True)

    @app.post("/sandbox/choices")
    def choices():
        """Hold the prompts (a person reading), answer automatically (per kind of party)."""
        with lock:
            for key in ("hold",):
                if key in request.form:
                    driver.hold = request.form[key] == "1"
            for kind in ("professional", "other"):
                if f"auto-{kind}" in request.form:
                    driver.auto[kind] = request.form[f"auto-{kind}"] == "1"
            return jsonify(ok=True, hold=driver.hold, auto=driver.auto)


def _add_clock_route(app: Flask, directory, clock_file, after_clock) -> None:
    """A trainer moves the service's sandbox clock forward."""

    @app.post("/sandbox/clock")
    def move_clock():
        from datetime import datetime

        from callrouter import clock

        try:
            moment = datetime.fromisoformat(request.form.get("to", ""))
        except ValueError:
            return jsonify(ok=False, error="Vul een datum en tijd in, zoals 26-11-2026 08:30."), 400
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=directory.tz)
        if clock_file is None:
            return jsonify(ok=False, error="De klok kan hier niet worden verzet."), 409
        shift = clock.skip_to(moment, clock_file)
        if after_clock is not None:
            after_clock()
        return jsonify(ok=True, shift_seconds=shift.total_seconds())
