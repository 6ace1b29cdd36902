"""Whether a calling worker has a pending callback request: the incoming hot path asks."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select

from callrouter import db, services
from callrouter.models import CallbackRequest

log = logging.getLogger(__name__)


_PENDING_FOR_WORKER = (
    select(
        CallbackRequest.id,
        CallbackRequest.target_org,
        CallbackRequest.line_id,
        CallbackRequest.planned_at,
    )
    .where(CallbackRequest.worker_hmac == bindparam("worker"), CallbackRequest.state == "pending")
    .order_by(CallbackRequest.planned_at)
    .limit(1)
)


class PendingWorkers:
    """Which workers (by pseudonym) have a pending request, refreshed every few seconds.

    Every inbound call asks whether its worker waits for a callback; nearly always the answer
    is no. One small query per process every `ttl` seconds answers that for all calls; only a
    worker in the set costs the full lookup. A process that makes a request touches `stamp`
    (a file in the instance folder), and every process of this machine refreshes its set when
    the stamp has moved: a worker who calls straight back hears the request at once, whichever
    web process answers. (Web processes on another machine learn it within `ttl`.) One that
    just ended may still be offered for cancelling, which then finds nothing: harmless.
    """

    _QUERY = (
        select(CallbackRequest.worker_hmac)
        .where(CallbackRequest.state == "pending", CallbackRequest.worker_hmac.is_not(None))
        .distinct()
    )

    def __init__(self, ttl: float = 5.0, stamp=None):
        import threading

        self.ttl = ttl
        self.stamp = stamp
        self._lock = threading.Lock()
        self._until = 0.0
        self._seen = None
        self._members: frozenset[str] = frozenset()

    def _stamp(self):
        if self.stamp is None:
            return None
        try:
            st = os.stat(self.stamp)
            return st.st_mtime_ns, st.st_size  # the size moves even within one clock tick
        except OSError:
            return None

    def contains(self, worker_hmac: str, conn) -> bool:
        import time

        now_, stamp = time.monotonic(), self._stamp()
        if now_ >= self._until or stamp != self._seen:
            with self._lock:
                self._members = frozenset(db.run_prepared(conn, self._QUERY, {}).scalars())
                self._until, self._seen = now_ + self.ttl, stamp
        return worker_hmac in self._members

    def add(self, worker_hmac: str | None) -> None:
        """This process is making a request: know it at once (`announce` tells the others
        once it is committed)."""
        if worker_hmac:
            self._members = self._members | {worker_hmac}

    def announce(self) -> None:
        """A request is committed: move the stamp, so the other processes look again."""
        if self.stamp is None:
            return
        try:
            os.makedirs(os.path.dirname(self.stamp), exist_ok=True)
            with open(self.stamp, "ab") as f:
                if f.tell() > 4096:
                    f.truncate(0)
                f.write(b".")
        except OSError:
            log.warning("could not touch %s", self.stamp)


def pending_for_worker(worker_hmac: str | None, conn):
    """The worker's next pending request (id, target_org, line_id, planned_at), or None.
    Nearly always answered from the process's set, without a query; `conn` is the incoming
    webhook's own (hot) connection, so that the call costs one transaction."""
    if not worker_hmac:
        return None
    if not services.current().pending_workers.contains(worker_hmac, conn):
        return None
    row = db.run_prepared(conn, _PENDING_FOR_WORKER, {"worker": worker_hmac}).first()
    if row is None:
        return None
    column_type = CallbackRequest.__table__.c.planned_at.type.dialect_impl(conn.dialect)
    planned = column_type.result_processor(conn.dialect, None)
    return PendingRequest(row[0], row[1], row[2], planned(row[3]) if planned else row[3])


class PendingRequest(NamedTuple):
    id: str
    target_org: str
    line_id: str
    planned_at: datetime
