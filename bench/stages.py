"""Where a webhook's time goes: the cost of each stage of the hot path, in-process.

`bench/webhooks.py` measures the service from outside (gunicorn, wrk); this script takes the
same signed requests and times, in one process and without a network, the whole WSGI call of
each endpoint and each stage of `POST /voice/incoming` on its own:

- the baseline app's WSGI call (what Flask costs for any request and response);
- form parsing, the signature check (on the parsed form), URL routing;
- identifying the caller, the pseudonym and the masked number;
- the database write (the call's row and the pending-callback check, one transaction);
- rendering the TwiML;
- what is left: the service's Flask hooks and context beyond the baseline's.

Each figure is the median of `--repeat` runs over `--requests` distinct requests, in
microseconds per request. `--profile ENDPOINT` prints cProfile's top functions instead.

Run: `.venv/bin/python bench/stages.py [--requests N] [--repeat R] [--database-url URL]
[--profile ENDPOINT]`
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhooks import ENDPOINTS, PUBLIC, TOKEN, signed  # noqa: E402


def environ(path: str, signature: str, body: str) -> dict:
    """The WSGI environ gunicorn would build for one webhook."""
    route, _, query = path.partition("?")
    data = body.encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(data)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_X_TWILIO_SIGNATURE": signature,
    }


def call_app(app, reqs: list) -> None:
    statuses: list[str] = []

    def start_response(status, _headers, _exc=None):
        statuses.append(status)

    for r in reqs:
        body = app.wsgi_app(environ(*r), start_response)
        b"".join(body)
        getattr(body, "close", lambda: None)()
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise SystemExit(f"{len(bad)} requests answered {bad[0]}")


def per_request(func, items: list, repeat: int) -> float:
    """The best of `repeat` runs of `func` over `items`, in microseconds per item (the
    least disturbed by whatever else the machine does)."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        func(items)
        runs.append((time.perf_counter() - t) / len(items) * 1e6)
    return min(runs)


def build(database_url: str | None, tmp: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO", "CALLROUTER"))}
    env.update(
        CALLROUTER_ENV="test",
        CALLROUTER_INSTANCE=tmp,
        TWILIO_AUTH_TOKEN=TOKEN,
        PUBLIC_BASE_URL=PUBLIC,
        SECRET_KEY="bench-secret-0123456789",
        CALLROUTER_LINES=str(ROOT / "config/lines.yaml"),
        DATABASE_URL=database_url or f"sqlite:///{tmp}/stages.db",
    )
    from callrouter.factory import create_app

    return create_app(environ=env)


def stages(app, n: int, repeat: int) -> list[tuple[str, float]]:
    from bench.baseline_app import app as baseline
    from callrouter import clock, db, signatures
    from callrouter.callbacks import pending_for_worker
    from callrouter.flows import routing, speech
    from callrouter.models import Call
    from callrouter.privacy import mask
    from callrouter.voice.prompts import menu_prompt

    incoming = next(e for e in ENDPOINTS if e.name == "incoming")
    batches = iter(range(10_000))

    def fresh() -> list:
        return signed(incoming, f"s{next(batches)}", n)

    out: list[tuple[str, float]] = []
    call_app(app, fresh())  # warm: statements prepared, TwiML cached, connections open
    total = min(per_request(lambda reqs: call_app(app, reqs), fresh(), 1) for _ in range(repeat))
    base = per_request(lambda reqs: call_app(baseline, reqs), fresh(), repeat)
    out.append(("baseline app: WSGI call, Flask request and response", base))

    req_cls = app.request_class
    out.append(
        (
            "form parsing",
            per_request(lambda rs: [req_cls(environ(*r)).form for r in rs], fresh(), repeat),
        )
    )
    svc = app.extensions["callrouter"]
    tokens = [svc.settings.twilio_auth_token]
    parsed = []
    for r in fresh():
        req = req_cls(environ(*r))
        req.form  # noqa: B018 - parsed before the timing
        parsed.append(req)
    out.append(
        (
            "signature check (form parsed)",
            per_request(
                lambda rs: [
                    signatures.is_valid(q, svc.settings.public_base_url, tokens) for q in rs
                ],
                parsed,
                repeat,
            ),
        )
    )
    envs = [environ(*r) for r in fresh()]
    out.append(
        (
            "URL routing",
            per_request(
                lambda es: [app.url_map.bind_to_environ(e).match() for e in es], envs, repeat
            ),
        )
    )
    numbers = [q.form["From"] for q in parsed]

    def who(ns):
        for number in ns:
            caller = routing.identify(svc.directory, number)
            svc.pseudonyms.pseudonym(number)
            mask(number)
            assert caller is not None

    out.append(("caller, pseudonym and mask", per_request(who, numbers, repeat)))

    def write(items):
        for row in items:
            with db.hot(svc.engine) as conn:
                db.insert_ignore(conn, Call.__table__, row)
                pending_for_worker(row["from_hmac"], conn)

    def make_rows():
        return [
            dict(
                id=uuid.uuid4().hex,
                call_sid=f"CAstage{uuid.uuid4().hex}"[:34],
                received_at=clock.now(),
                from_hmac=svc.pseudonyms.pseudonym(n_),
                from_masked=mask(n_),
                status="in-progress",
                caller_org="utrecht",
                identified_by="number",
                urgent=False,
                consent=False,
                outcome=None,
            )
            for n_ in numbers
        ]

    with app.app_context():
        runs = [per_request(write, make_rows(), 1) for _ in range(repeat)]
        out.append(("database write (insert, pending check, commit)", min(runs)))
        caller = routing.identify(svc.directory, numbers[0])
        with app.test_request_context():
            out.append(
                (
                    "TwiML rendering (the menu)",
                    per_request(
                        lambda xs: [menu_prompt(0, intro=speech.welcome(caller)) for _ in xs],
                        numbers,
                        repeat,
                    ),
                )
            )
    out.append(
        (
            "rest: the service's hooks and context beyond the baseline",
            total - sum(v for _, v in out),
        )
    )
    out.append(("total: POST /voice/incoming, whole WSGI call", total))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--profile", metavar="ENDPOINT", help="cProfile one endpoint instead")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build(args.database_url, tmp)
        try:
            if args.profile:
                return profile(app, args.profile, args.requests)
            n = args.requests
            for ep in ENDPOINTS:
                pre = signed(ENDPOINTS[0], f"p-{ep.name}", n) if ep.of_calls else []
                call_app(app, pre)
                reqs = signed(ep, f"p-{ep.name}", n)
                t = time.perf_counter()
                call_app(app, reqs)
                print(f"{ep.name:18s} {(time.perf_counter() - t) / n * 1e6:7.0f} us per request")
            print()
            print("| stage of POST /voice/incoming (known caller) | us per request |")
            print("|---|---:|")
            for name, value in stages(app, n, args.repeat):
                print(f"| {name} | {value:.0f} |")
        finally:
            from callrouter import redis_conn

            redis_conn.stop_embedded(Path(tmp))
    return 0


def profile(app, name: str, n: int) -> int:
    ep = next(e for e in ENDPOINTS if e.name == name)
    if ep.of_calls:
        call_app(app, signed(ENDPOINTS[0], "prof", n))
    reqs = signed(ep, "prof", n)
    call_app(app, reqs[:100])
    prof = cProfile.Profile()
    prof.enable()
    call_app(app, reqs[100:])
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
