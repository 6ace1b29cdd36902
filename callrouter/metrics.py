"""Prometheus metrics: what the web process counts itself, and the `/metrics` endpoint.

Two kinds of series, each where it is exact:

- **Per process** (this module): the webhooks' latency per route, webhooks rejected for their
  signature, handlers that failed (the caller heard the Dutch error prompt), fallback-URL hits.
  Under gunicorn every worker writes them to prometheus_client's multiprocess folder
  (`callrouter.multiproc`) and a scrape sums them.
- **Shared state** (`callrouter.metrics_state`, read at each scrape): calls, transfers, legs
  and callback requests from the database, the RQ queues from Redis, and the counts that the
  worker's jobs (reconciliation, retention) keep in Redis. RQ forks a work horse per job, so a
  job's own process counters would leave a file per job behind; Redis is shared by every
  worker on every machine instead. These series are the same from every web instance.

`/metrics` answers only with `Authorization: Bearer $METRICS_TOKEN` (401 without it, 403 with a
wrong one, 404 while METRICS_TOKEN is unset), like the API.
"""

from __future__ import annotations

import hmac
import logging
from time import perf_counter

from flask import Blueprint, Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

log = logging.getLogger(__name__)

VOICE = "/voice/"
UNMATCHED = "unmatched"  # a path under /voice/ that is no route (bounded label values)

WEBHOOK_SECONDS = Histogram(
    "callrouter_webhook_duration_seconds",
    "Time to answer a Twilio webhook, by route (signature check included).",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0),
)
REJECTED = Counter(
    "callrouter_webhooks_rejected_total",
    "Webhooks refused with 403: no or a wrong X-Twilio-Signature.",
    ["route"],
)
FAILED = Counter(
    "callrouter_webhook_errors_total",
    "Webhook handlers that failed; the caller heard the Dutch error prompt.",
    ["route"],
)
FALLBACK = Counter(
    "callrouter_fallback_hits_total",
    "Calls that reached the fallback URL (Twilio could not use the primary answer).",
)

bp = Blueprint("metrics", __name__)

_routes: frozenset[str] = frozenset()


def init_app(app: Flask) -> None:
    """Time every request under /voice/ and serve /metrics."""
    global _routes
    _routes = frozenset(
        rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith(VOICE)
    )
    # Every route's counters from zero, so that an alert on increase() sees the first one.
    for label in (*_routes, UNMATCHED):
        REJECTED.labels(label)
        FAILED.labels(label)
    app.wsgi_app = Timed(app.wsgi_app)  # type: ignore[method-assign]  # as Flask documents it
    app.register_blueprint(bp)


def route(path: str) -> str:
    """The label of a path: the route itself, or `unmatched` (never a caller's own text)."""
    return path if path in _routes else UNMATCHED


class Timed:
    """WSGI middleware: the latency of each webhook, into its route's histogram. Outside of the
    Flask request so that no hook runs per request; a route's child is looked up once."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.children: dict[str, Histogram] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(VOICE):
            return self.wsgi_app(environ, start_response)
        started = perf_counter()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            child = self.children.get(path)
            if child is None:
                label = route(path)
                child = WEBHOOK_SECONDS.labels(label)
                if label != UNMATCHED:
                    self.children[path] = child
            child.observe(perf_counter() - started)


def rejected(path: str) -> None:
    REJECTED.labels(route(path)).inc()


def failed(path: str) -> None:
    FAILED.labels(route(path)).inc()


@bp.get("/metrics")
def scrape():
    from callrouter import metrics_state, services

    svc = services.current()
    token = svc.settings.metrics_token
    if not token:
        return Response("metrics are off: set METRICS_TOKEN\n", status=404, mimetype="text/plain")
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not given:
        return Response(
            "send Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="callrouter-metrics"'},
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        log.warning("metrics: a scrape with a wrong token was refused")
        return Response("wrong token\n", status=403, mimetype="text/plain")
    registry = CollectorRegistry()
    if values.ValueClass is not values.MutexValue:  # the mode chosen when it was imported
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(metrics_state.State(svc))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _ThisProcess:
    """The default registry's series (one process: the development server, the tests)."""

    def collect(self):
        yield from REGISTRY.collect()
