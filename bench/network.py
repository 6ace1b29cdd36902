"""The network report over 1,000,000 transfers, beside a plain COUNT(*) of the same table.

Fills a fresh database (SQLite in a temporary folder; PostgreSQL with --database-url or
DATABASE_URL) with a year of transfers over the shipped directory: calls, cases and
transfers, with answered shares, results (some wrong lines), speech terms and multi-line
cases. Then runs the daily job's rollup of the settled days (callrouter.figures, as on a
running service) and times `network.collect_days` for the local days of the last year (the
work of `flask network report` and of the Netwerk page), for the admin and for a supervisor,
beside `SELECT COUNT(*) FROM transfers` and the same report from the call log alone
(`network.collect`, with the time of each of its queries), a few rounds each; the report
from the rollup must equal the one from the call log. Target: the report under 10 s. Only
local databases are touched.

Run: `.venv/bin/python bench/network.py [--rows 1000000] [--rounds 3] [--database-url URL]`
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from callrouter import db, figures, network, network_cells  # noqa: E402
from callrouter import directory as directory_mod  # noqa: E402
from callrouter.flows.routing import _squeeze  # noqa: E402
from callrouter.models import Call, Case, Transfer  # noqa: E402

CHUNK = 20_000
RESULTS = (
    ("resolved", 0.6),
    ("partial", 0.2),
    ("unresolved", 0.08),
    ("wrong-line", 0.05),
    (None, 0.07),
)


def rows(n: int, directory, until: datetime, seed: int):
    """Chunks of (calls, cases, transfers) as plain tuples, n transfers in all."""
    rng = random.Random(seed)
    lines = list(directory.lines)
    callers = [c.id for c in directory.callers]
    terms = {ln.id: [_squeeze(t).strip() for t in (ln.topic, *ln.keywords)] for ln in lines}
    span = 365 * 86400
    start = until - timedelta(seconds=span)
    calls, cases, transfers = [], [], []
    made = 0
    while made < n:
        call_id, case_id = uuid.uuid4().hex, uuid.uuid4().hex
        at = start + timedelta(seconds=rng.randrange(span))
        line = rng.choice(lines)
        caller = rng.choice(callers)
        speech = rng.random() < 0.4
        calls.append(
            (
                call_id,
                "CAb" + call_id[:29],
                caller,
                at,
                line.organisation_id,
                line.id,
                "speech" if speech else "digits",
                rng.choice(terms[line.id]) if speech else None,
                False,
                True,
                "completed",
                "connected",
                case_id,
            )
        )
        cases.append((case_id, f"{rng.randrange(10**7):07d}", caller, call_id, "closed", at, at))
        seq = [line] + ([rng.choice(lines)] if rng.random() < 0.08 else [])
        for i, ln in enumerate(seq):
            if made >= n:
                break
            t = at + timedelta(seconds=15 + 300 * i)
            answered = rng.random() < 0.88
            r, acc = rng.random(), 0.0
            result = None
            for value, p in RESULTS:
                acc += p
                if r < acc:
                    result = value
                    break
            right = rng.choice(lines) if result == "wrong-line" else None
            tta = round(rng.uniform(5, 40), 1) if answered else None
            transfers.append(
                (
                    uuid.uuid4().hex,
                    call_id,
                    caller,
                    ln.organisation_id,
                    ln.id,
                    False,
                    True,
                    "ended",
                    "connected" if answered else "no-answer",
                    0,
                    t,
                    t + timedelta(seconds=tta) if answered else None,
                    tta,
                    10.0 if answered else None,
                    case_id,
                    i,
                    calls[-1][7] if i == 0 else None,
                    result if answered else None,
                    right.id if right else None,
                    right.organisation_id if right else None,
                )
            )
            made += 1
        if len(transfers) >= CHUNK:
            yield calls, cases, transfers
            calls, cases, transfers = [], [], []
    if transfers:
        yield calls, cases, transfers


CALL_COLS = (
    "id",
    "call_sid",
    "caller_org",
    "received_at",
    "target_org",
    "line_id",
    "selected_by",
    "selected_term",
    "urgent",
    "consent",
    "status",
    "outcome",
    "case_id",
)
CASE_COLS = ("id", "reference", "caller_org", "call_id", "state", "opened_at", "updated_at")
TRANSFER_COLS = (
    "id",
    "call_id",
    "caller_org",
    "target_org",
    "line_id",
    "urgent",
    "consent",
    "state",
    "outcome",
    "hunt_position",
    "created_at",
    "accepted_at",
    "time_to_answer_s",
    "minutes_saved",
    "case_id",
    "step",
    "selected_term",
    "result",
    "right_line",
    "right_org",
)


def fill(engine, n: int, directory, until: datetime, seed: int) -> float:
    t0 = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"

    def stamp(v):
        if not isinstance(v, datetime):
            return v
        v = v.astimezone(UTC)
        return v if postgres else v.replace(tzinfo=None).isoformat(sep=" ")

    for table, cols in (
        (Call.__table__, CALL_COLS),
        (Case.__table__, CASE_COLS),
        (Transfer.__table__, TRANSFER_COLS),
    ):
        assert set(cols) <= set(table.c.keys()), table.name
    done = 0
    for calls, cases, transfers in rows(n, directory, until, seed):
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            cur = raw.cursor()
            for table, cols, data in (
                ("calls", CALL_COLS, calls),
                ("cases", CASE_COLS, cases),
                ("transfers", TRANSFER_COLS, transfers),
            ):
                ph = ", ".join(["%s" if postgres else "?"] * len(cols))
                sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({ph})"
                cur.executemany(sql, [tuple(stamp(v) for v in row) for row in data])
        done += len(transfers)
        print(
            f"\r  filled {done:,} of {n:,} transfers ({time.perf_counter() - t0:.0f} s)",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


SUPERVISOR_ORG = "svb"  # an organisation's view: the transfers it made or received
DAY = timedelta(days=1)


def time_parts(session, directory, since: datetime, until: datetime) -> list[tuple[str, float]]:
    """The admin's report part by part (the queries of network.collect, one run each)."""
    from callrouter.flows import network as nflow

    conn = session.connection()
    period = network_cells.period(since, until)
    lines: dict = {}
    terms: dict = {}
    out = []
    t0 = time.perf_counter()
    network_cells.count_hours(conn, period, directory.tz, (lines, terms))
    out.append(("transfers per line and UTC hour", time.perf_counter() - t0))
    t0 = time.perf_counter()
    network_cells.count_results(conn, period, (lines, terms))
    out.append(("answer times and results per line and term", time.perf_counter() - t0))
    t0 = time.perf_counter()
    network._count_after_wrong_line(conn, since, until, None, lines, terms)
    out.append(("where calls went after a wrong line", time.perf_counter() - t0))
    t0 = time.perf_counter()
    org_of = {ln.id: ln.organisation_id for ln in directory.lines}
    nflow.combos(network._case_lines(conn, period), org_of)
    out.append(("lines together in cases", time.perf_counter() - t0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument(
        "--keep",
        metavar="FILE",
        help="SQLite only: fill this file once and measure it again on later runs",
    )
    args = ap.parse_args()
    directory = directory_mod.load(ROOT / "config" / "lines.yaml")
    until = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        created = None
        if args.database_url:
            base = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
            name = "bench_net_" + uuid.uuid4().hex[:8]
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            url = created = base.rsplit("/", 1)[0] + "/" + name
        else:
            url = f"sqlite:///{args.keep or Path(tmp) / 'network.db'}"
        reuse = bool(args.keep) and Path(args.keep).exists()
        engine = db.make_engine(url)
        try:
            db.upgrade(engine, Path(tmp))
            if reuse:
                with engine.connect() as conn:
                    until = datetime.fromisoformat(
                        conn.exec_driver_sql("SELECT max(created_at) FROM transfers").scalar()
                    ).replace(tzinfo=UTC) + timedelta(seconds=1)
                print(f"{engine.dialect.name}: reusing {args.keep}")
            else:
                print(f"{engine.dialect.name}: filling {args.rows:,} transfers ...")
                fill_s = fill(engine, args.rows, directory, until, args.seed)
                print(f"  fill took {fill_s:.0f} s")
            from sqlalchemy.orm import Session

            kind, tz = engine.dialect.name, directory.tz
            last = until.astimezone(tz).date()
            first = last - timedelta(days=365)
            since, end = figures.day_start(first, tz), figures.day_start(last + DAY, tz)
            # The daily job's rollup of the settled days, as a running service has it.
            t0 = time.perf_counter()
            stored = figures.build(db.make_sessionmaker(engine), tz, until)
            build_s = time.perf_counter() - t0
            report_s, count_s, org_s, raw_s = [], [], [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                with engine.connect() as conn:
                    total = conn.execute(text("SELECT COUNT(*) FROM transfers")).scalar()
                count_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                with Session(engine) as s:
                    report = network.collect_days(s, directory, first, last)
                report_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                with Session(engine) as s:
                    network.collect_days(s, directory, first, last, SUPERVISOR_ORG)
                org_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                with Session(engine) as s:
                    raw = network.collect(s, directory, since, end)
                raw_s.append(time.perf_counter() - t0)
            with Session(engine) as s:
                parts = time_parts(s, directory, since, end)
            with Session(engine) as s:
                org_raw = network.collect(s, directory, since, end, SUPERVISOR_ORG)
                org_stored = network.collect_days(s, directory, first, last, SUPERVISOR_ORG)
            same = network.as_dict(report, directory) == network.as_dict(
                raw, directory
            ) and network.as_dict(org_stored, directory) == network.as_dict(org_raw, directory)
            rep, cnt = statistics.median(report_s), statistics.median(count_s)
            found = (
                f"{sum(ln.transfers for ln in report.lines.values()):,} transfers, "
                f"{len(report.terms)} terms, {len(report.combinations)} combinations, "
                f"{len(report.suggestions)} suggestions"
            )
            print(
                f"\n{kind}: {total:,} transfers over a year ({first} .. {last}); the daily "
                f"rollup stored {stored} settled days in {build_s:.1f} s; the report found "
                f"{found}; from the rollup the same as from the call log (admin and "
                f"supervisor): "
                f"{'yes' if same else 'NO'}\n"
            )
            print("| measurement | median s | rounds (s) | target |")
            print("|---|---:|---|---|")

            def row(name, values, target=""):
                rounds = ", ".join(f"{v:.3f}" for v in values)
                print(f"| {name} | {statistics.median(values):.3f} | {rounds} | {target} |")

            row("`SELECT COUNT(*) FROM transfers` (baseline)", count_s)
            verdict = "met" if rep < 10 else "**over**"
            row("network report over the year (admin)", report_s, f"< 10 s: {verdict}")
            row(f"the same for a supervisor of {SUPERVISOR_ORG}", org_s)
            row("the admin's, from the call log alone (no rollup)", raw_s)
            for part, seconds in parts:
                row(f"of that: {part}", [seconds])
            print(f"\nratio report / COUNT(*): {rep / cnt:.0f}x")
            ok = rep < 10 and same
        finally:
            engine.dispose()
            if created:
                with admin.connect() as conn:
                    conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{name}'"
                    )
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
                admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
