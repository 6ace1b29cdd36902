"""SQLite as the service's database: WAL mode, one writer at a time, checkpoints off the
request path.

SQLite is the default database (a user's fresh machine, a trial); PostgreSQL is for
production. Three things make it fit for webhooks that each write one small transaction:

- WAL mode with `synchronous=NORMAL`: a commit appends to the log without an fsync (a power
  cut may lose the last commits, never the database);
- the write gate: a blocking `flock` across processes, so that writers take turns at once
  instead of polling with SQLite's growing sleeps;
- the checkpointer: copying the log back into the database file (a checkpoint) fsyncs, and
  SQLite by default does it inside the commit that fills 1000 pages of log, which then takes
  milliseconds while every other writer waits at the gate. One thread of each process does
  it instead, without the gate, every quarter second for each database written since; only
  when the log keeps growing under continuous writes does it take the gate once, so that the
  log can start over.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL = 0.25  # seconds between the checkpointer's passive checkpoints
GATED_AFTER_PAGES = 16_384  # 64 MiB of log: checkpoint once with the writers held
# If no checkpointer runs (its thread failed), SQLite's own in-commit checkpoint still bounds
# the log, later than the checkpointer would.
BACKSTOP_PAGES = 2 * GATED_AFTER_PAGES


class WriteGate:
    """Serialise SQLite transactions across processes with a file lock.

    SQLite lets one writer in at a time and makes the others poll with growing sleeps
    (1, 2, 5, 10 ms ...); under several gunicorn workers that polling, not the writing, is
    what costs. A blocking `flock` hands the turn over the moment it is free. Re-entrant per
    thread, so a nested session in the same thread does not wait for itself.
    """

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = -1

    def acquire(self) -> None:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        if depth:
            return
        self._thread_lock.acquire()
        if self._fd is None or self._pid != os.getpid():  # a forked child needs its own fd
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth <= 0:
            return
        self._local.depth = depth - 1
        if depth == 1:
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._thread_lock.release()

    def __enter__(self) -> WriteGate:
        self.acquire()
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


class Checkpointer:
    """Checkpoints one database's WAL from the process's checkpoint thread.

    The thread (one per process, started with the first connection a process opens, again in
    a forked child: threads do not survive a fork) visits every live checkpointer, skipping
    a database whose log has not been written since its last visit. A checkpointer is
    forgotten with its engine.
    """

    def __init__(self, path: Path, gate: WriteGate):
        self.path = path
        self.gate = gate
        self.checkpoints = 0  # passive checkpoints done (tests look at it)
        self.gated = 0  # of which with the writers held
        self._seen: tuple[int, int] | None = None  # the log's (mtime, size) at the last visit
        self._pid = os.getpid()

    def ensure_running(self) -> None:
        _CHECKPOINT_THREAD.watch(self)

    def visit(self) -> None:
        """Checkpoint if the log was written since the last visit."""
        if self._pid != os.getpid():  # inherited through a fork: the child's own engine does it
            return
        try:
            st = os.stat(f"{self.path}-wal")
        except OSError:
            return
        seen = (st.st_mtime_ns, st.st_size)
        if seen == self._seen:
            return
        # A connection of its own for each visit, closed at once: one held open would keep
        # the log alive after the engine's own connections have closed (the last connection
        # to close is the one that folds the log into the file and removes it).
        conn = sqlite3.connect(self.path, timeout=15, isolation_level=None)
        try:
            self.checkpoint(conn)
        finally:
            conn.close()
        self._seen = seen

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One passive checkpoint; with the gate when the log has grown past the limit (under
        continuous writes a passive one never finds the log fully copied, so it never
        starts over)."""
        _busy, pages, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        if pages >= GATED_AFTER_PAGES:
            with self.gate:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.gated += 1


class _CheckpointThread:
    """The process's one checkpoint thread and the checkpointers it visits."""

    def __init__(self):
        self._watched: weakref.WeakSet[Checkpointer] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._pid = -1
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def watch(self, checkpointer: Checkpointer) -> None:
        if checkpointer in self._watched and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # a new process (or a forked child): a new thread
                self._pid = os.getpid()
                self._watched = weakref.WeakSet()
                self._stop = threading.Event()
                self.thread = threading.Thread(
                    target=self._run, name="sqlite-checkpoint", daemon=True
                )
                self.thread.start()
                # A daemon thread inside SQLite while the interpreter shuts down can crash
                # it: stop between two checkpoints first.
                atexit.register(self._shutdown, self._stop, self.thread)
            checkpointer._pid = os.getpid()
            self._watched.add(checkpointer)

    def watching(self) -> list[Checkpointer]:
        return list(self._watched)

    @staticmethod
    def _shutdown(stop: threading.Event, thread: threading.Thread) -> None:
        stop.set()
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        pid, stop = os.getpid(), self._stop
        warned = 0.0
        while self._pid == pid and not stop.wait(CHECKPOINT_INTERVAL):
            for checkpointer in list(self._watched):
                if stop.is_set():
                    return
                try:
                    checkpointer.visit()
                except sqlite3.Error as exc:
                    if time.monotonic() - warned > 60:  # at most once a minute
                        log.warning("checkpoint of %s failed: %s", checkpointer.path.name, exc)
                        warned = time.monotonic()
                del checkpointer


_CHECKPOINT_THREAD = _CheckpointThread()


_GATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> its write gate
_CHECKPOINTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def gate_of(engine: Engine) -> WriteGate | None:
    return _GATES.get(engine)


def checkpointer_of(engine: Engine) -> Checkpointer | None:
    return _CHECKPOINTERS.get(engine)


def make_engine(url: str) -> Engine:
    file_db = url.startswith("sqlite:///") and url != "sqlite:///:memory:"
    path = Path(url[len("sqlite:///") :]) if file_db else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # Every use ends in commit or rollback (engine.begin(), sessions), so the pool's own
    # rollback on check-in is only overhead on the webhook's path.
    engine = create_engine(url, connect_args={"timeout": 15}, pool_reset_on_return=None)
    checkpointer = None
    if path is not None:
        gate = WriteGate(Path(f"{path}.write-lock"))
        checkpointer = Checkpointer(path, gate)
        _GATES[engine] = gate
        _CHECKPOINTERS[engine] = checkpointer
        event.listen(engine, "begin", lambda conn: gate.acquire())
        event.listen(engine, "commit", lambda conn: gate.release())
        event.listen(engine, "rollback", lambda conn: gate.release())

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # DB-API connection
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        if checkpointer is not None:
            cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            checkpointer.ensure_running()
        cur.close()

    return engine
