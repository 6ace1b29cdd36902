"""Where a webhook's time goes, in-process: each endpoint's whole WSGI call, and the stages
of `POST /voice/incoming` (known caller) measured inside real requests.

`bench/webhooks.py` measures the service from outside (gunicorn, wrk); this script sends the
same signed requests straight to the WSGI application, in one process without a network, and
times each stage where it runs: every stage's function is wrapped by a timer that counts its
own time, minus the time of the timed stages it calls. What no stage claims is Flask's and
Werkzeug's own work (the request context, the response), shown beside the baseline app's
whole call, which is nearly all such work.

Figures are microseconds per request, the best of `--repeat` runs over `--requests` distinct
requests (the run least disturbed by the rest of the machine). `--profile ENDPOINT` prints
cProfile's top functions for one endpoint instead.

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
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhooks import ENDPOINTS, PUBLIC, TOKEN, seed, signed  # noqa: E402


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


class Stages:
    """Exclusive time per stage, measured inside real requests: each timed function adds its
    own time minus that of the timed functions it called."""

    def __init__(self):
        self.total: dict[str, float] = {}
        self.inclusive: dict[str, float] = {}
        self._stack: list[float] = []  # time spent in timed children, per open frame

    def _enter(self) -> float:
        self._stack.append(0.0)
        return time.perf_counter()

    def _leave(self, name: str, started: float) -> None:
        spent = time.perf_counter() - started
        children = self._stack.pop()
        self.total[name] = self.total.get(name, 0.0) + spent - children
        self.inclusive[name] = self.inclusive.get(name, 0.0) + spent
        if self._stack:
            self._stack[-1] += spent

    def wrap(self, name: str, func):
        def timed(*args, **kwargs):
            started = self._enter()
            try:
                return func(*args, **kwargs)
            finally:
                self._leave(name, started)

        return timed

    def wrap_context(self, name: str, factory):
        """The same for a context manager (`db.hot`): from entering the block to leaving it."""
        stages = self

        class Timed:
            def __init__(self, *args, **kwargs):
                self._cm = factory(*args, **kwargs)

            def __enter__(self):
                self._started = stages._enter()
                return self._cm.__enter__()

            def __exit__(self, *exc):
                try:
                    return self._cm.__exit__(*exc)
                finally:
                    stages._leave(name, self._started)

        return Timed


def stages(app, n: int, repeat: int) -> list[tuple[str, float]]:
    """The stages of `POST /voice/incoming` (known caller), best of `repeat` runs."""
    import flask.ctx

    from bench.baseline_app import app as baseline
    from callrouter import db, request, signatures
    from callrouter.voice import intake

    incoming = next(e for e in ENDPOINTS if e.name == "incoming")
    batches = iter(range(10_000))

    def fresh() -> list:
        return signed(incoming, f"s{next(batches)}", n)

    base = per_request(lambda reqs: call_app(baseline, reqs), fresh(), repeat)
    svc = app.extensions["callrouter"]
    st = Stages()
    patches = [
        (request.Request, "_load_form_data", "form parsing"),
        (signatures, "expected_signature", "signature: the HMAC over URL and form"),
        (signatures, "is_valid", "signature: headers, URL, comparison"),
        (flask.ctx.RequestContext, "match_request", "URL routing"),
        (intake.routing, "identify", "caller, pseudonym and mask"),
        (svc.pseudonyms, "pseudonym", "caller, pseudonym and mask"),
        (intake, "mask", "caller, pseudonym and mask"),
        (intake, "menu_prompt", "TwiML (prepared once per caller organisation)"),
        (intake, "twiml", "response object"),
        (app.session_interface, "open_session", "Flask hooks: session, signature hook, after"),
    ]
    saved = [
        (owner, attr, attr in vars(owner), vars(owner).get(attr)) for owner, attr, _ in patches
    ]
    for owner, attr, name in patches:
        setattr(owner, attr, st.wrap(name, getattr(owner, attr)))
    hot = db.hot
    db.hot = st.wrap_context("database: insert, pending check, commit", hot)
    view = app.view_functions["voice.incoming"]
    app.view_functions["voice.incoming"] = st.wrap("the view's own work", view)
    hooks = [
        (funcs, key, list(fs))
        for funcs in (app.before_request_funcs, app.after_request_funcs)
        for key, fs in funcs.items()
    ]
    for funcs, key, fs in hooks:
        funcs[key] = [st.wrap("Flask hooks: session, signature hook, after", f) for f in fs]
    timed_app = SimpleNamespace(wsgi_app=st.wrap("whole", app.wsgi_app))
    best: dict[str, float] = {}
    try:
        call_app(timed_app, fresh())  # warm
        for _ in range(repeat):
            st.total.clear()
            st.inclusive.clear()
            call_app(timed_app, fresh())
            run = {k: v / n * 1e6 for k, v in st.total.items()}
            run["whole"] = st.inclusive["whole"] / n * 1e6
            if not best or run["whole"] < best["whole"]:
                best = run
    finally:
        for owner, attr, had, original in saved:
            if had:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)
        db.hot = hot
        app.view_functions["voice.incoming"] = view
        for funcs, key, fs in hooks:
            funcs[key] = fs
    whole_us = best.pop("whole")
    out = [(name, value) for name, value in best.items()]
    out.sort(key=lambda kv: -kv[1])
    out.append(
        (
            "Flask and WSGI: context, routing glue, response (the rest)",
            whole_us - sum(best.values()),
        )
    )
    out.append(("total: POST /voice/incoming, whole WSGI call", whole_us))
    out.append(("for comparison: the baseline app's whole WSGI call", base))
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
            print("| endpoint | us per request |")
            print("|---|---:|")
            for e, ep in enumerate(ENDPOINTS):
                runs = []
                for r in range(args.repeat + 1):  # the first run warms up
                    tag = f"p{e}{r}"
                    call_app(app, signed(ENDPOINTS[0], tag, n) if ep.of_calls else [])
                    if ep.seeded:
                        seed(app.extensions["callrouter"].settings.database_url, tag, n)
                    runs.append(
                        per_request(lambda reqs: call_app(app, reqs), signed(ep, tag, n), 1)
                    )
                print(f"| {ep.name} | {min(runs[1:]):.0f} |")
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
    if ep.seeded:
        seed(app.extensions["callrouter"].settings.database_url, "prof", n)
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
