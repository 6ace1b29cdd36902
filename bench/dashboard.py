"""Dashboard and API response times on a call log of 1,000,000 transfers, under gunicorn.

Fills a fresh database (SQLite in a temp dir by default; PostgreSQL when `--database-url` or
DATABASE_URL points to one: a new database is created on that server and dropped afterwards)
with N calls of one transfer each, spread over the last 365 days (office hours weighted) over
the shipped directory's callers and lines; 5% of the calls have a callback request and every
transfer one professional leg. The schema comes from the migrations (`db.upgrade`).

Then starts the real service (`gunicorn app:app`), logs in through the real form (an admin, a
supervisor of a municipality and one of an organisation), and measures one client,
sequentially, endpoints interleaved round by round: the call log (admin, page 2, both
supervisors, a filter and its page 2), the figures (default: the last 28 days; admin and the
municipality) and the API's first page of transfers (admin and municipality tokens). Target
(issue): p95 < 300 ms for each. Baseline, measured in the same run on the same server:
GET /healthz; each page also gets its ratio p95 / baseline p95. A page that has used
PAGE_BUDGET_S is not requested again (it has failed already). For a page over target, the
queries it runs are timed in-process and shown with their plan (EXPLAIN QUERY PLAN on SQLite,
EXPLAIN ANALYZE on PostgreSQL), each statement stopped after STATEMENT_CAP_S. Traffic goes to
127.0.0.1 only; every loop is bounded. Exit code 1 if any page misses the target or errs.
Every call opens a case (one step, the chosen line; one in twenty a second organisation),
as the voice flow does, so that the figures' case part reads a realistic case table.
Before the service starts, the daily job's figures rollup (callrouter.figures.build) stores the
settled days, as on a running service; its time is reported. The figures then read 26 stored
days and compute the last two or three from the call log.

Run: `.venv/bin/python bench/dashboard.py [--rows N] [--requests N] [--database-url URL]
      [--keep] [--reuse PATH-or-URL] [--explain]`
"""

from __future__ import annotations

import argparse
import bisect
import html
import http.client
import itertools
import json
import math
import operator
import os
import queue
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event, func, insert, select  # noqa: E402

from callrouter import db, figures, redis_conn  # noqa: E402
from callrouter import directory as directory_mod  # noqa: E402
from callrouter.dashboard import auth, queries  # noqa: E402
from callrouter.models import (  # noqa: E402
    Call,
    CallbackRequest,
    Case,
    CaseStep,
    Leg,
    Transfer,
)
from callrouter.privacy import Pseudonymiser, mask  # noqa: E402

LINES = ROOT / "config" / "lines.yaml"
SECRET_KEY = "bench-dashboard-secret-0123456789"  # fixed: a kept database stays consistent
TWILIO_TOKEN = "bench-token-0123456789abcdef0123"
PUBLIC = "https://callrouter.bench.test"
PASSWORD = "bench password 0123456789"
TARGET_MS = 300.0
CHUNK = 10_000
SUPERVISOR_ORG = "utrecht"  # a municipality (a caller of the shipped directory)
AGENCY_ORG = "cak"  # an organisation: its supervisor sees the calls its lines received
PAGE_BUDGET_S = 120.0  # a page this slow stops being requested once it has used this much
STATEMENT_CAP_S = 30.0  # the diagnosis stops a statement after this long
FILTER_LINE = "svb-aow"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NEXT = re.compile(r'rel="next" href="([^"]+)"')

# When calls come in: weekdays, office hours (local time); a little in the evening and weekend.
DAY_WEIGHT = (1.0, 1.0, 0.95, 1.0, 0.8, 0.06, 0.03)  # Monday first
BUSIEST_TODAY = 3  # today is given a Thursday's traffic, so that Tue and Wed come before it
HOUR_WEIGHT = (
    0.002,
    0.001,
    0.001,
    0.001,
    0.001,
    0.002,
    0.01,
    0.08,
    0.6,
    1.0,
    1.0,
    0.9,
    0.55,
    0.8,
    0.9,
    0.8,
    0.6,
    0.25,
    0.06,
    0.03,
    0.02,
    0.01,
    0.005,
    0.003,
)
CALLER_WEIGHT = {"amsterdam": 0.38, "utrecht": 0.22, "enschede": 0.16, "hoorn": 0.14, "best": 0.10}
# Call outcome -> (share, transfer outcome, leg status, leg outcome); every call has a transfer.
OUTCOMES = {
    "connected": (0.80, "connected", "completed", "accepted"),
    "no-answer": (0.05, "no-answer", "no-answer", "no-answer"),
    "busy": (0.02, "busy", "busy", "busy"),
    "declined": (0.02, "declined", "completed", "declined"),
    "failed": (0.01, "failed", "failed", "failed"),
    "abandoned": (0.05, "cancelled", "canceled", "cancelled"),
}  # + callback-requested (the --callbacks share): transfer no-answer, callback request
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


# --------------------------------------------------------------------------- the data


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _stamps(rng: random.Random, n: int, tz, now: datetime) -> list[float]:
    """n instants (UTC epoch seconds, sorted) in the 365 days before now, office hours
    weighted; none in the last ten minutes. The traffic's week is turned so that today is a
    Thursday: the days the figures compute from the call log (today and the two before, not
    settled yet) are busy weekdays whatever day the benchmark runs, its worst case."""
    today = now.astimezone(tz).date()
    turn = (today.weekday() - BUSIEST_TODAY) % 7
    oldest, newest = now - timedelta(days=365), now - timedelta(minutes=10)
    starts, weights = [], []
    for back in range(366, -1, -1):
        day = today - timedelta(days=back)
        for hour in range(24):
            start = datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)
            if start >= oldest and start + timedelta(hours=1) <= newest:
                starts.append(start.timestamp())
                weights.append(DAY_WEIGHT[(day.weekday() - turn) % 7] * HOUR_WEIGHT[hour])
    slots = rng.choices(starts, weights=weights, k=n)
    return sorted(s + rng.random() * 3600 for s in slots)


def _worker_pool(rng: random.Random, caller, pseudo: Pseudonymiser, size: int) -> list[tuple]:
    """Numbers of one municipality's staff: desk phones in its block (identified by number)
    and mobiles (identified by PIN). (number, hmac, masked, identified_by, encrypted)."""
    pool = []
    for i in range(size):
        if i % 4 == 3 or not caller.prefixes:
            number, how = f"+316{rng.randrange(10_000_000, 99_999_999)}", "pin"
        else:
            prefix = caller.prefixes[i % len(caller.prefixes)]
            rest = 12 - len(prefix)
            number, how = f"{prefix}{rng.randrange(10**rest):0{rest}d}", "number"
        pool.append((number, pseudo.pseudonym(number), mask(number), how, pseudo.encrypt(number)))
    return pool


def _pick(rng: random.Random, items: list, cum: list[float]):
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


def generate(
    n: int, directory, now: datetime, seed: int, callback_share: float, with_legs: bool, stamp
):
    """Chunks of (calls, transfers, legs, callbacks) rows, oldest first, as the voice flow
    leaves them. Instants are naive UTC until `stamp` gives them the database's input form."""
    rng = random.Random(seed)
    pseudo = Pseudonymiser(SECRET_KEY)
    callers = list(directory.callers)
    caller_w = list(itertools.accumulate(CALLER_WEIGHT.get(c.id, 0.1) for c in callers))
    pools = {c.id: _worker_pool(rng, c, pseudo, 1500) for c in callers}
    lines = list(directory.lines)
    # A few lines carry most calls (Zipf-like), the municipality's own lines little.
    order = list(range(len(lines)))
    rng.shuffle(order)
    line_w = list(
        itertools.accumulate(
            (0.15 if ln.organisation_id.startswith("gemeente") else 1.0) / (1 + order[i]) ** 0.7
            for i, ln in enumerate(lines)
        )
    )
    info = {}
    for ln in lines:
        org = directory.organisation(ln.organisation_id)
        info[ln.id] = (
            org.id,
            org.public_wait_minutes,
            [(pseudo.pseudonym(x), mask(x)) for x in ln.numbers[:1]][0],
            [(pseudo.pseudonym(x), mask(x)) for x in (ln.urgent_numbers or ln.numbers)[:1]][0],
        )
    names = list(OUTCOMES)
    outcome_w = list(itertools.accumulate(OUTCOMES[k][0] for k in names))
    epoch = datetime(1970, 1, 1)
    now = now.astimezone(UTC).replace(tzinfo=None)
    stamps = _stamps(rng, n, directory.tz, now.replace(tzinfo=UTC))
    refs: set[str] = set()
    sec = timedelta(seconds=1)
    uniform, rand = rng.uniform, rng.random
    case_open_after = now - timedelta(days=30)  # older cases are closed (retention closes them)
    for start in range(0, n, CHUNK):
        calls, transfers, legs, callbacks, cases, steps = [], [], [], [], [], []
        for k in range(start, min(n, start + CHUNK)):
            received = epoch + timedelta(seconds=stamps[k])
            caller = _pick(rng, callers, caller_w)
            number, hmac_, masked, how, enc = rng.choice(pools[caller.id])
            line = _pick(rng, lines, line_w)
            org_id, public_wait, normal, urgent_num = info[line.id]
            urgent = rand() < 0.05
            consent = rand() < 0.7
            callback = rand() < callback_share
            outcome = "callback-requested" if callback else _pick(rng, names, outcome_w)
            t_out, leg_status, leg_out = (
                ("no-answer", "no-answer", "no-answer") if callback else OUTCOMES[outcome][1:]
            )
            call_id, tr_id, call_sid = _hex(rng), _hex(rng), "CA" + _hex(rng)
            menu_done = received + sec * uniform(6, 40)
            created = menu_done + sec * uniform(0.3, 1.5)
            ringing = created + sec * uniform(1, 4)
            if t_out == "connected":
                tta = round(min(120.0, max(3.0, rng.lognormvariate(math.log(18), 0.5))), 2)
                accepted = created + sec * tta
                added = accepted + sec * uniform(20, 180)
                left = added + sec * uniform(10, 120)
                ended = left + sec * uniform(60, 1200)
                saved = round(max(0.0, public_wait - tta / 60), 2)
                call_end = left + sec * uniform(0.5, 3)
                duration = round((ended - accepted).total_seconds(), 1)
                s_accepted, s_added, s_left = stamp(accepted), stamp(added), stamp(left)
            else:
                tta = saved = accepted = duration = s_accepted = s_added = s_left = None
                ended = ringing + sec * uniform(10, 60)
                call_end = ended + sec * uniform(3, 40)
            s_created, s_ended = stamp(created), stamp(ended)
            # Every call opens a case with the chosen line as its step (as the voice flow
            # does); one in twenty also needed a second organisation.
            case_id = _hex(rng)
            ref = "".join(rng.choices(REF_ALPHABET, k=6))
            while ref in refs:
                ref = "".join(rng.choices(REF_ALPHABET, k=6))
            refs.add(ref)
            is_open = received >= case_open_after
            cases.append(
                {
                    "id": case_id,
                    "reference": ref,
                    "caller_org": caller.id,
                    "call_id": call_id,
                    "life_event": None,
                    "worker_hmac": None if not is_open else hmac_,
                    "worker_masked": None if not is_open else masked,
                    "worker_number_enc": None,
                    "state": "open" if is_open else "closed",
                    "opened_at": stamp(menu_done),
                    "closed_at": None if is_open else stamp(menu_done + timedelta(days=30)),
                    "updated_at": stamp(call_end),
                }
            )
            steps.append(
                {
                    "id": _hex(rng),
                    "case_id": case_id,
                    "position": 0,
                    "line_id": line.id,
                    "target_org": org_id,
                    "reason": None,
                    "state": "done" if t_out == "connected" else "unanswered",
                    "transfer_id": tr_id,
                    "callback_id": None,
                    "updated_at": stamp(call_end),
                }
            )
            if rand() < 0.05:
                other = _pick(rng, lines, line_w)
                steps.append(
                    {
                        "id": _hex(rng),
                        "case_id": case_id,
                        "position": 1,
                        "line_id": other.id,
                        "target_org": other.organisation_id,
                        "reason": None,
                        "state": rng.choice(("done", "skipped", "closed")),
                        "transfer_id": None,
                        "callback_id": None,
                        "updated_at": stamp(call_end),
                    }
                )
            calls.append(
                {
                    "id": call_id,
                    "call_sid": call_sid,
                    "caller_org": caller.id,
                    "identified_by": how,
                    "from_hmac": hmac_,
                    "from_masked": masked,
                    "received_at": stamp(received),
                    "menu_done_at": stamp(menu_done),
                    "ended_at": stamp(call_end),
                    "target_org": org_id,
                    "line_id": line.id,
                    "selected_by": "digits" if rand() < 0.7 else "speech",
                    "urgent": urgent,
                    "consent": consent,
                    "outcome": outcome,
                    "status": "completed",
                    "duration_s": int((call_end - received).total_seconds()),
                    "purged_at": None,
                    "case_id": case_id,
                }
            )
            transfers.append(
                {
                    "id": tr_id,
                    "call_id": call_id,
                    "caller_org": caller.id,
                    "target_org": org_id,
                    "line_id": line.id,
                    "urgent": urgent,
                    "consent": consent,
                    "state": "ended",
                    "outcome": t_out,
                    "hunt_position": 0,
                    "worker_call_sid": call_sid,
                    "conference_sid": "CF" + _hex(rng),
                    "created_at": s_created,
                    "ringing_at": stamp(ringing),
                    "accepted_at": s_accepted,
                    "citizen_added_at": s_added,
                    "worker_left_at": s_left,
                    "ended_at": s_ended,
                    "hold_wanted": None,
                    "time_to_answer_s": tta,
                    "duration_s": duration,
                    "minutes_saved": saved,
                    "case_id": case_id,
                    "step": 0,
                }
            )
            if with_legs:
                leg_hmac, leg_masked = urgent_num if urgent else normal
                legs.append(
                    {
                        "id": _hex(rng),
                        "transfer_id": tr_id,
                        "kind": "professional",
                        "position": 0,
                        "call_sid": "CA" + _hex(rng),
                        "number_hmac": leg_hmac,
                        "number_masked": leg_masked,
                        "status": leg_status,
                        "outcome": leg_out,
                        "whisper_plays": 1 if accepted or leg_out == "declined" else 0,
                        "created_at": s_created,
                        "answered_at": s_accepted,
                        "accepted_at": s_accepted,
                        "ended_at": s_ended,
                    }
                )
            if callback:
                ref = "".join(rng.choices(REF_ALPHABET, k=6))
                while ref in refs:
                    ref = "".join(rng.choices(REF_ALPHABET, k=6))
                refs.add(ref)
                requested = call_end - sec
                planned = requested + timedelta(minutes=uniform(5, 26 * 60))
                if planned > now:
                    state, result, attempts, done = "pending", None, 0, None
                else:
                    state, result = rng.choices(
                        (
                            ("done", "connected"),
                            ("failed", "no-answer"),
                            ("cancelled", "cancelled"),
                        ),
                        (85, 10, 5),
                    )[0]
                    attempts = 1 if state != "failed" else 3
                    done = planned + timedelta(minutes=uniform(1, 40))
                callbacks.append(
                    {
                        "id": _hex(rng),
                        "reference": ref,
                        "call_id": call_id,
                        "transfer_id": tr_id,
                        "caller_org": caller.id,
                        "target_org": org_id,
                        "line_id": line.id,
                        "urgent": urgent,
                        "consent": consent,
                        "reason": "unanswered" if rand() < 0.8 else "asked",
                        "worker_number_enc": enc,
                        "worker_hmac": hmac_,
                        "worker_masked": masked,
                        "state": state,
                        "outcome": result,
                        "requested_at": stamp(requested),
                        "planned_at": stamp(planned),
                        "attempts": attempts,
                        "max_attempts": 3,
                        "call_sid": "CA" + _hex(rng) if attempts else None,
                        "number_index": 0 if attempts else None,
                        "confirmed_at": (
                            stamp(requested + sec * 2) if caller.sms_confirmation else None
                        ),
                        "worker_call_sid": "CA" + _hex(rng) if state == "done" else None,
                        "last_attempt_at": stamp(planned) if attempts else None,
                        "done_at": stamp(done) if done else None,
                        "updated_at": stamp(done or requested),
                    }
                )
        yield calls, transfers, legs, callbacks, cases, steps


TABLES = (
    Call.__table__,
    Transfer.__table__,
    Leg.__table__,
    CallbackRequest.__table__,
    Case.__table__,
    CaseStep.__table__,
)


def _stamp_for(dialect):
    """Naive UTC -> what the driver takes: on SQLite the text SQLAlchemy stores (checked
    against the column type's own bind processing), on PostgreSQL timestamptz text for COPY."""
    if dialect.name == "postgresql":
        return lambda moment: moment.isoformat(" ", "microseconds") + "+00"
    sample = datetime(2026, 3, 29, 1, 2, 3, 0)
    ours = sample.isoformat(" ", "microseconds")
    theirs = Call.__table__.c.received_at.type.dialect_impl(dialect).bind_processor(dialect)(
        sample.replace(tzinfo=UTC)
    )
    assert ours == theirs, (ours, theirs)
    return lambda moment: moment.isoformat(" ", "microseconds")


def _ahead(chunks):
    """Chunks made in a thread, one ahead of the writer: the next is generated while the
    database works on this one (PostgreSQL in its own process; psycopg waits without the
    GIL)."""
    q: queue.Queue = queue.Queue(maxsize=1)

    def produce():
        try:
            for chunk in chunks:
                q.put(chunk)
            q.put(None)
        except BaseException as exc:  # handed over to the writer
            q.put(exc)

    threading.Thread(target=produce, daemon=True).start()
    while (item := q.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def fill(engine, n: int, directory, seed: int, callback_share: float, with_legs: bool) -> dict:
    """Write the rows as a bulk load, one transaction per chunk of calls (with their
    transfers, legs and callbacks): the secondary indexes are dropped meanwhile and recreated
    from their own definitions afterwards, so the schema ends as migrated. PostgreSQL: COPY,
    foreign-key triggers off for this session (the rows are consistent by construction);
    SQLite: the INSERT compiled from Core's insert(), run as the driver's executemany."""
    counts = dict.fromkeys((t.name for t in TABLES), 0)
    chunks = _ahead(
        generate(
            n,
            directory,
            datetime.now(UTC),
            seed,
            callback_share,
            with_legs,
            _stamp_for(engine.dialect),
        )
    )
    names = [t.name for t in TABLES]
    pg = engine.dialect.name == "postgresql"
    t0 = time.perf_counter()
    with engine.connect() as conn:
        if pg:
            indexes = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = "
                "current_schema() AND tablename = ANY(%(names)s) AND NOT EXISTS (SELECT 1 FROM "
                "pg_constraint c WHERE c.conname = i.indexname) ORDER BY indexname",
                {"names": names},
            ).fetchall()
            conn.exec_driver_sql("SET session_replication_role = replica")
        else:
            for pragma in ("cache_size=-1000000", "journal_mode=OFF", "synchronous=OFF"):
                conn.exec_driver_sql(f"PRAGMA {pragma}")  # this connection, during the load
            indexes = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({', '.join('?' * len(names))}) ORDER BY name",
                tuple(names),
            ).fetchall()
        conn.commit()
        with conn.begin():
            for name, _ in indexes:
                conn.exec_driver_sql(f"DROP INDEX {name}")
        done, prepared = 0, {}
        for chunk in chunks:
            with conn.begin():
                for table, rows in zip(TABLES, chunk, strict=True):
                    if rows:
                        _write(conn, table, rows, prepared)
                        counts[table.name] += len(rows)
            done += len(chunk[0])
            _progress(done, n, t0)
        print(file=sys.stderr)
        t1 = time.perf_counter()
        with conn.begin():
            for _, sql in indexes:
                conn.exec_driver_sql(sql)
        counts["index_seconds"] = time.perf_counter() - t1
        if pg:
            conn.exec_driver_sql("RESET session_replication_role")
        else:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.commit()
    counts["seconds"] = time.perf_counter() - t0
    return counts


def _write(conn, table, rows: list[dict], prepared: dict) -> None:
    if table.name not in prepared:
        cols = list(rows[0])
        if conn.dialect.name == "postgresql":
            sql = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
        else:
            sql = str(insert(table).compile(dialect=conn.dialect, column_keys=cols))
        prepared[table.name] = (sql, operator.itemgetter(*cols))
    sql, row_of = prepared[table.name]
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cur, cur.copy(sql) as cp:
            for row in rows:
                cp.write_row(row_of(row))
    else:
        conn.exec_driver_sql(sql, list(map(row_of, rows)))


def _progress(done: int, n: int, t0: float) -> None:
    if done % 100_000 == 0 or done == n:
        rate = done / max(time.perf_counter() - t0, 1e-9)
        print(
            f"\r  {done:>9,} / {n:,} calls  ({rate:,.0f} calls/s)",
            end="",
            file=sys.stderr,
            flush=True,
        )


def analyze(engine) -> str:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        return "VACUUM ANALYZE after loading (as autovacuum would after a bulk load)"
    return "no ANALYZE (the service never runs it on SQLite)"


def describe(engine, url: str) -> str:
    """Row counts, size and the newest call, of the database as the pages will see it."""
    with engine.connect() as conn:
        counts = {t.name: conn.scalar(select(func.count()).select_from(t)) for t in TABLES}
        newest = conn.scalar(select(func.max(Call.received_at)))
        recent = conn.scalar(
            select(func.count())
            .select_from(Call.__table__)
            .where(Call.received_at >= datetime.now(UTC) - timedelta(days=28))
        )
        if engine.dialect.name == "postgresql":
            size = conn.scalar(sa.text("SELECT pg_database_size(current_database())"))
        else:
            size = Path(url[len("sqlite:///") :]).stat().st_size
    return (
        f"{counts['calls']:,} calls, {counts['transfers']:,} transfers, "
        f"{counts['legs']:,} legs, {counts['callback_requests']:,} callback requests, "
        f"{counts['cases']:,} cases ({counts['case_steps']:,} steps); "
        f"{recent:,} calls in the last 28 days; newest {newest:%Y-%m-%d %H:%M} UTC; "
        f"{size / 1e9:.2f} GB"
    )


# --------------------------------------------------------------------------- databases


def pg_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_pg_database(base: str) -> str:
    """A fresh database on the server of `base` (as tests/conftest.py does); its URL."""
    name = "bench_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(pg_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return pg_url(base).rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = sa.create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    admin.dispose()


def accounts(engine, directory, run: str) -> dict:
    """An admin, a supervisor of a municipality and one of an organisation, and API tokens
    (every organisation; the municipality)."""
    sessions = db.make_sessionmaker(engine)
    out = {
        "admin": f"admin-{run}@bench.test",
        "supervisor": f"supervisor-{run}@bench.test",
        "agency": f"agency-{run}@bench.test",
    }
    with sessions.begin() as s:
        auth.create_user(s, directory, out["admin"], PASSWORD, "admin", None)
        auth.create_user(s, directory, out["supervisor"], PASSWORD, "supervisor", SUPERVISOR_ORG)
        auth.create_user(s, directory, out["agency"], PASSWORD, "supervisor", AGENCY_ORG)
        out["token_admin"] = auth.create_token(s, directory, f"bench-{run}", None)
        out["token_org"] = auth.create_token(
            s, directory, f"bench-{run}-{SUPERVISOR_ORG}", SUPERVISOR_ORG
        )
    return out


# --------------------------------------------------------------------------- the service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, instance: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO", "CALLROUTER", "REDIS_URL", "DATABASE_URL"))
    }
    env.update(
        CALLROUTER_ENV="test",
        CALLROUTER_INSTANCE=str(instance),
        CALLROUTER_LINES=str(LINES),
        DATABASE_URL=url,
        SECRET_KEY=SECRET_KEY,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        PUBLIC_BASE_URL=PUBLIC,
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]  # else the embedded Redis, if ever needed
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "app:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if Client(port).get("/healthz")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the service did not start: {log.read_text()[-2000:]}")


class Client:
    """One HTTP client on loopback keeping its cookies (gunicorn's sync workers close every
    connection, so each request opens its own, the baseline's included)."""

    def __init__(self, port: int, bearer: str | None = None):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.bearer = bearer

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict, bytes, float]:
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.bearer:
            h["Authorization"] = f"Bearer {self.bearer}"
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        elapsed = time.perf_counter() - t0
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value and morsel["expires"] != "Thu, 01 Jan 1970 00:00:00 GMT":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return resp.status, resp.headers, data, elapsed

    def get(self, path: str):
        return self.request("GET", path)

    def login(self, email: str) -> None:
        status, _, page, _ = self.get("/dashboard/login")
        m = _CSRF.search(page.decode())
        if status != 200 or not m:
            raise RuntimeError(f"login page: {status}")
        form = urlencode(
            {"email": email, "password": PASSWORD, "csrf_token": m.group(1), "next": ""}
        ).encode()
        status, headers, _, _ = self.request(
            "POST", "/dashboard/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        # Logged in: the dashboard's index redirects to the call log, not to the login form.
        check, after, _, _ = self.get("/dashboard/")
        if status != 302 or check != 302 or "/login" in after.get("Location", "/login"):
            raise RuntimeError(f"login of {email} failed: {status} {headers.get('Location')}")


# --------------------------------------------------------------------------- measuring


def next_link(client: Client, path: str) -> str:
    status, _, body, _ = client.get(path)
    m = _NEXT.search(body.decode())
    if status != 200 or not m:
        raise RuntimeError(f"{path}: no link to the next page ({status})")
    return html.unescape(m.group(1))


def measure(endpoints: list[dict], warmup: int, requests: int, budget: float) -> None:
    """Round-robin over the endpoints, one request at a time: drift hits all alike. A page
    that has used `budget` seconds (warm-ups included) is not requested again: it has failed
    already, and the run stays bounded (gunicorn stops a request after 30 s anyway)."""
    for ep in endpoints:
        ep["ms"], ep["errors"], ep["first_error"], ep["spent"] = [], 0, None, 0.0
    for rnd in range(warmup + requests):
        for ep in endpoints:
            if ep["spent"] > budget:
                continue
            t0 = time.perf_counter()
            try:
                status, _, body, elapsed = ep["client"].get(ep["path"])
            except (OSError, http.client.HTTPException) as exc:
                status, body, elapsed = type(exc).__name__, b"", time.perf_counter() - t0
            ep["spent"] += elapsed
            ok = status == ep.get("status", 200) and ep.get("expect", b"") in body
            if rnd >= warmup or ep["spent"] > budget:
                ep["ms"].append(elapsed * 1e3)
                if not ok:
                    ep["errors"] += 1
                    ep["first_error"] = ep["first_error"] or f"{status} {body[:200]!r}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def report(endpoints: list[dict]) -> bool:
    base = p95(endpoints[0]["ms"])
    ok = True
    print(f"{'page':58s} {'p50':>7s} {'p95':>7s} {'max':>7s} {'p95/base':>9s}  result")
    for ep in endpoints:
        ms = ep["ms"]
        q95 = p95(ms)
        if ep.get("target"):
            passed = q95 < TARGET_MS and not ep["errors"]
            ok &= passed
            verdict = "PASS" if passed else "FAIL"
        else:
            verdict = "baseline" if ep is endpoints[0] else "info"
        errs = f"  errors {ep['errors']}: {ep['first_error']}" if ep["errors"] else ""
        if len(ms) < len(endpoints[0]["ms"]):
            errs = f"  (only {len(ms)} requests: over the {PAGE_BUDGET_S:.0f} s budget){errs}"
        print(
            f"{ep['name']:58s} {statistics.median(ms):7.1f} {q95:7.1f} {max(ms):7.1f} "
            f"{q95 / base:9.1f}  {verdict}{errs}"
        )
    print(
        f"(ms; {len(endpoints[0]['ms'])} requests each; baseline: p95 of GET /healthz on the "
        f"same server; target p95 < {TARGET_MS:.0f} ms)"
    )
    return ok


# --------------------------------------------------------------------------- diagnosis


def capped_engine(url: str):
    """An engine for the diagnosis whose statements stop after STATEMENT_CAP_S."""
    engine = db.make_engine(url)
    deadline = [math.inf]

    @event.listens_for(engine, "connect")
    def _cap(dbapi_conn, _record):  # DB-API connection
        if engine.dialect.name == "postgresql":
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(STATEMENT_CAP_S * 1000)}")
            dbapi_conn.commit()
        else:
            dbapi_conn.set_progress_handler(lambda: time.monotonic() > deadline[0], 10_000)

    @event.listens_for(engine, "before_cursor_execute")
    def _start(*_):
        deadline[0] = time.monotonic() + STATEMENT_CAP_S

    return engine


def profile(engine, fn) -> tuple[float, list[tuple[float, str, object]]]:
    """Run one page's queries in-process: the function's time and, per SQL statement, its
    best time when re-run alone (fetching every row; three runs when it is quick). A
    statement stopped at STATEMENT_CAP_S counts as that long."""
    seen: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    sessions = db.make_sessionmaker(engine)
    total = math.inf
    for _ in range(2):  # the second run is warm (statement caches, connection, pages)
        seen.clear()
        event.listen(engine, "before_cursor_execute", capture)
        t0 = time.perf_counter()
        try:
            with sessions() as s:
                fn(s)
        except sa.exc.DBAPIError:
            pass  # stopped at the cap
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        total = time.perf_counter() - t0
        if total > 5:
            break
    timed = []
    with engine.connect() as conn:
        for statement, params in seen:
            best = math.inf
            for _ in range(3):
                t0 = time.perf_counter()
                try:
                    conn.exec_driver_sql(statement, params).fetchall()
                except sa.exc.DBAPIError:
                    conn.rollback()
                best = min(best, time.perf_counter() - t0)
                if best > 1:
                    break
            timed.append((best, statement, params))
        conn.rollback()
    return total, timed


def plan(engine, statement: str, params) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            try:
                rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            except sa.exc.DBAPIError:  # over the cap: the plan without running it
                conn.rollback()
                rows = conn.exec_driver_sql("EXPLAIN " + statement, params)
            text = "\n".join(r[0] for r in rows)
        else:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).fetchall()
            depth = {0: -1}
            lines = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            text = "\n".join(lines)
        conn.rollback()
    return text


BIG_TABLE = 100_000  # rows: a table this large is never read whole for one page
_TOP_LIMIT = re.compile(r"\bLIMIT\s+\S+(\s+OFFSET\s+\S+)?\s*$", re.IGNORECASE)
WHOLE_SHARE = 0.5  # a plan node reading this share of such a table reads it whole


def big_tables(engine) -> dict[str, int]:
    """The tables of at least BIG_TABLE rows, and their rows."""
    out = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            n = conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() or 0
            if n >= BIG_TABLE:
                out[name] = int(n)
    return out


def whole_reads(engine, statement: str, params, big: dict[str, int]) -> list[str]:
    """The big tables a statement's plan reads whole. PostgreSQL: a scan node of the
    executed plan (EXPLAIN ANALYZE) whose rows read, kept and filtered out, over all its
    loops, reach WHOLE_SHARE of the table. SQLite (whose plan has no row counts): a SCAN of
    a big table (or of an alias of it), with or without a covering index, unless the
    statement ends in a LIMIT that stops a scan in index order early, as the call log's
    newest-first pages do (not when all its rows are sorted in a temporary B-tree first)."""
    found = []
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            try:
                doc = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params
                ).scalar()
            except sa.exc.DBAPIError:
                conn.rollback()
                return [f"(over the cap of {STATEMENT_CAP_S:.0f} s: rows read unknown)"]
            tree = doc if isinstance(doc, list) else json.loads(doc)
            todo = [tree[0]["Plan"]]
            while todo:
                node = todo.pop()
                todo.extend(node.get("Plans", ()))
                rel = node.get("Relation Name")
                if rel not in big:
                    continue
                read = (
                    node.get("Actual Rows", 0)
                    + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0)
                ) * node.get("Actual Loops", 1)
                if read >= WHOLE_SHARE * big[rel]:
                    found.append(f"{node['Node Type']} on {rel}: {read:,.0f} of {big[rel]:,} rows")
        else:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).fetchall()
            details = [row[-1] for row in rows]
            # A LIMIT of the statement itself (not of a subquery) stops a scan in index order
            # early, unless all its rows are sorted first (a sort of the "right part" of the
            # order only, within equal leading keys, still stops early).
            sorted_first = any(r[1] == 0 and r[-1] == "USE TEMP B-TREE FOR ORDER BY" for r in rows)
            stops = _TOP_LIMIT.search(statement) and not sorted_first
            for detail in details if not stops else ():
                m = re.match(r"SCAN (\w+)", detail)
                table = m and re.sub(r"_\d+$", "", m.group(1))  # SQLAlchemy's alias table_1
                if table in big:
                    found.append(f"{detail} ({big[table]:,} rows)")
        conn.rollback()
    return found


def diagnose(engine, ep: dict, big: dict[str, int]) -> list[str]:
    """Print a page's queries, slowest first, with their plans; returns the whole-table
    reads of any of its statements."""
    total, timed = profile(engine, ep["queries"])
    sql_time = sum(t for t, _, _ in timed)
    capped = " (stopped at the cap)" if total >= STATEMENT_CAP_S else ""
    print(
        f"\n=== {ep['name']}: in-process {total * 1e3:.0f} ms{capped}, of which SQL "
        f"{sql_time * 1e3:.0f} ms in {len(timed)} statements"
    )
    wholes = [w for _, sql, params in timed for w in whole_reads(engine, sql, params, big)]
    print("whole-table reads: " + ("; ".join(wholes) if wholes else "none"))
    for i, (seconds, statement, params) in enumerate(sorted(timed, key=lambda x: -x[0])):
        if i and seconds < 0.02:
            break
        print(
            f"--- {seconds * 1e3:.0f} ms:\n{' '.join(statement.split())}\n"
            f"    params: {_short(params)}"
        )
        print(plan(engine, statement, params))
    return wholes


def _short(params) -> str:
    text = json.dumps(params, default=str)
    return text if len(text) < 400 else text[:400] + "..."


# --------------------------------------------------------------------------- main


def code_version() -> str:
    """The commit measured, and how many tracked files differ from it."""
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.count("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (f" with {dirty} modified files" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="calls (one transfer each)")
    ap.add_argument("--requests", type=int, default=60, help="measured requests per page")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server to create a fresh database on (default: "
        "DATABASE_URL if it is PostgreSQL, else SQLite in a temp dir)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the filled database")
    ap.add_argument(
        "--reuse", metavar="PATH", help="a kept database (SQLite file or PostgreSQL URL): no fill"
    )
    ap.add_argument("--callbacks", type=float, default=0.05, help="share with a callback")
    ap.add_argument("--no-legs", action="store_true", help="no professional leg rows")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--explain",
        action="store_true",
        help="show the queries and plans of every page, not only the slow ones",
    )
    args = ap.parse_args()

    env_url = os.environ.get("DATABASE_URL", "")
    server = args.database_url or (env_url if env_url.startswith("postgres") else None)
    tmp = Path(tempfile.mkdtemp(prefix="crbench-"))
    instance = tmp / "instance"
    created_pg = None
    if args.reuse:
        url = (
            pg_url(args.reuse)
            if args.reuse.startswith("postgres")
            else f"sqlite:///{Path(args.reuse).resolve()}"
        )
    elif server and server.startswith("postgres"):
        url = created_pg = create_pg_database(server)
    elif server:
        raise SystemExit("--database-url: a PostgreSQL URL (SQLite is the default)")
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    engine = db.make_engine(url)
    proc = None
    try:
        directory = directory_mod.load(LINES)
        kind = engine.dialect.name
        print(
            f"code: {code_version()}; database: {kind} "
            f"{engine.url.render_as_string(hide_password=True)}"
        )
        t0 = time.perf_counter()
        db.upgrade(engine, instance)
        print(f"migrated (alembic) in {time.perf_counter() - t0:.1f} s")
        if not args.reuse:
            counts = fill(engine, args.rows, directory, args.seed, args.callbacks, not args.no_legs)
            t1 = time.perf_counter()
            how = analyze(engine)
            rows = sum(counts[t.name] for t in TABLES)
            method = (
                f"{'COPY' if kind == 'postgresql' else 'executemany'}, secondary "
                f"indexes rebuilt after: {counts['index_seconds']:.1f} s of it"
            )
            print(
                f"fill: {counts['seconds']:.1f} s for {rows:,} rows in chunks of {CHUNK:,} calls "
                f"({method}); {how}: {time.perf_counter() - t1:.1f} s"
            )
        print(f"data: {describe(engine, url)}")
        # The daily job's rollup of settled days (callrouter.figures), as a running service
        # has it: the figures read stored days and compute the last few from the call log.
        t0 = time.perf_counter()
        stored = figures.build(db.make_sessionmaker(engine), directory.tz, datetime.now(UTC))
        print(
            f"figures rollup (the daily job): {stored} days stored in "
            f"{time.perf_counter() - t0:.1f} s"
        )

        run = secrets.token_hex(3)
        acc = accounts(engine, directory, run)
        engine.dispose()
        port = free_port()
        log = tmp / "gunicorn.log"
        t0 = time.perf_counter()
        proc = start_server(url, instance, port, args.workers, log)
        print(
            f"gunicorn app:app --workers {args.workers} on 127.0.0.1:{port} "
            f"(started in {time.perf_counter() - t0:.1f} s)"
        )
        admin, sup = Client(port), Client(port)
        admin.login(acc["admin"])
        sup.login(acc["supervisor"])
        agency = Client(port)
        agency.login(acc["agency"])
        api_admin, api_org = Client(port, acc["token_admin"]), Client(port, acc["token_org"])
        base_client = Client(port)
        flt = {"outcome": "connected", "line": FILTER_LINE}
        filtered = "/dashboard/calls?" + urlencode(flt)
        page2 = next_link(admin, "/dashboard/calls")
        filtered2 = next_link(admin, filtered)

        tz = directory.tz
        today = datetime.now(UTC).astimezone(tz).date()
        first, last = today - timedelta(days=27), today
        none = queries.Filters()
        flt_filters = queries.parse_filters(flt, directory)[0]

        def cursor(link: str):
            return queries.decode_cursor(parse_qs(urlsplit(link).query)["cursor"][0])

        def calls_q(org, f, cur=None):
            return lambda s: queries.call_summaries(s, queries.calls_page(s, org, f, cur)[0])

        def figures_q(org, a: date = first, b: date = last):
            def run(s):  # as the view: the figures, then the case figures of the same days
                queries.figures(s, org, directory, a, b, "day")
                queries.case_figures_days(s, org, directory, a, b)

            return run

        def api_q(org):
            return lambda s: queries.transfers_page(s, org, None, None, None, None, 50)

        page = b'id="call-log"'
        endpoints = [
            {"name": "GET /healthz (baseline)", "client": base_client, "path": "/healthz"},
            {
                "name": "GET /dashboard/ (session check + redirect)",
                "client": admin,
                "path": "/dashboard/",
                "status": 302,
            },
            {
                "name": "GET /dashboard/calls (admin)",
                "client": admin,
                "path": "/dashboard/calls",
                "expect": page,
                "target": True,
                "queries": calls_q(None, none),
            },
            {
                "name": "GET /dashboard/calls page 2 (admin, cursor)",
                "client": admin,
                "path": page2,
                "expect": page,
                "target": True,
                "queries": calls_q(None, none, cursor(page2)),
            },
            {
                "name": f"GET /dashboard/calls (supervisor {SUPERVISOR_ORG})",
                "client": sup,
                "path": "/dashboard/calls",
                "expect": page,
                "target": True,
                "queries": calls_q(SUPERVISOR_ORG, none),
            },
            {
                "name": f"GET /dashboard/calls (supervisor {AGENCY_ORG}, an organisation)",
                "client": agency,
                "path": "/dashboard/calls",
                "expect": page,
                "target": True,
                "queries": calls_q(AGENCY_ORG, none),
            },
            {
                "name": f"GET /dashboard/calls?{urlencode(flt)}",
                "client": admin,
                "path": filtered,
                "expect": page,
                "target": True,
                "queries": calls_q(None, flt_filters),
            },
            {
                "name": "  same, page 2 (cursor)",
                "client": admin,
                "path": filtered2,
                "expect": page,
                "target": True,
                "queries": calls_q(None, flt_filters, cursor(filtered2)),
            },
            {
                "name": "GET /dashboard/figures (admin, last 28 days)",
                "client": admin,
                "path": "/dashboard/figures",
                "expect": b'id="',
                "target": True,
                "queries": figures_q(None),
            },
            {
                "name": f"GET /dashboard/figures (supervisor {SUPERVISOR_ORG})",
                "client": sup,
                "path": "/dashboard/figures",
                "expect": b'id="',
                "target": True,
                "queries": figures_q(SUPERVISOR_ORG),
            },
            {
                "name": "GET /api/v1/transfers (admin token)",
                "client": api_admin,
                "path": "/api/v1/transfers",
                "expect": b'"next_cursor":"',
                "target": True,
                "queries": api_q(None),
            },
            {
                "name": f"GET /api/v1/transfers ({SUPERVISOR_ORG} token)",
                "client": api_org,
                "path": "/api/v1/transfers",
                "expect": b'"next_cursor":"',
                "target": True,
                "queries": api_q(SUPERVISOR_ORG),
            },
        ]
        t0 = time.perf_counter()
        measure(endpoints, args.warmup, args.requests, PAGE_BUDGET_S)
        print(
            f"measured {len(endpoints)} pages x {args.warmup}+{args.requests} requests in "
            f"{time.perf_counter() - t0:.0f} s\n"
        )
        proc.terminate()
        proc.wait(timeout=30)
        proc = None
        problems = [
            ln for ln in log.read_text().splitlines() if " ERROR " in ln or "Traceback" in ln
        ]
        ok = report(endpoints)
        if problems:
            ok = False
            print(f"{len(problems)} errors in the server log: {problems[0]}")
        slow = [
            ep
            for ep in endpoints
            if "queries" in ep and (args.explain or p95(ep["ms"]) >= TARGET_MS)
        ]
        if slow:
            engine.dispose()
            engine = capped_engine(url)
            big = big_tables(engine)
            wholes = {ep["name"]: diagnose(engine, ep, big) for ep in slow}
            read_whole = [name for name, found in wholes.items() if found]
            print(
                f"\nplans that read a table of {BIG_TABLE:,}+ rows whole: "
                + (", ".join(read_whole) if read_whole else f"none (of {len(wholes)} pages)")
            )
            ok &= not read_whole
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        redis_conn.stop_embedded(instance)  # only if a page ever started it
        engine.dispose()
        if created_pg:
            if args.keep:
                print(f"kept: --reuse {created_pg}")
            else:
                drop_pg_database(created_pg)
        if args.keep and not args.reuse and not created_pg:
            print(f"kept: --reuse {tmp / 'bench.db'}")
            shutil.rmtree(instance, ignore_errors=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
