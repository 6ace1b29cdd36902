"""SQLite's checkpoints run in a thread of their own, never inside a webhook's commit; the
log still starts over under continuous writes; the thread ends with its engine; and the
processes that serve the webhooks keep their long-lived objects out of the collector."""

from __future__ import annotations

import gc
import importlib.util
import multiprocessing
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from callrouter import sqlite_engine

ROOT = Path(__file__).resolve().parent.parent


def _engine(tmp_path: Path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    engine = sqlite_engine.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT)"))
    return engine


def _write(engine, n: int) -> None:
    for _ in range(n):
        with engine.begin() as conn:  # one transaction, as a webhook's
            conn.execute(
                text("INSERT INTO t VALUES (:id, :v)"), {"id": uuid.uuid4().hex, "v": "x" * 3000}
            )


def _wal_pages(path: Path) -> int:
    return max(0, (path.with_name(path.name + "-wal").stat().st_size - 32) // (4096 + 24))


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]


def test_a_commit_never_checkpoints(tmp_path, monkeypatch):
    """With the thread held off, 1,500 pages of log stay in the log: SQLite's own checkpoint
    at 1,000 pages (inside a commit) no longer happens."""
    monkeypatch.setattr(sqlite_engine.Checkpointer, "ensure_running", lambda self: None)
    engine = _engine(tmp_path)
    _write(engine, 1500)
    assert _wal_pages(tmp_path / "w.db") >= 1500
    assert sqlite_engine.checkpointer_of(engine).checkpoints == 0
    engine.dispose()


def test_the_thread_copies_the_log_back(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_engine, "CHECKPOINT_INTERVAL", 0.05)
    engine = _engine(tmp_path)
    _write(engine, 50)
    checkpointer = sqlite_engine.checkpointer_of(engine)
    deadline = time.monotonic() + 10
    before = checkpointer.checkpoints
    while checkpointer.checkpoints < before + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    # Nothing written since: the log holds no page that the database file lacks.
    import sqlite3

    with sqlite3.connect(tmp_path / "w.db") as other:
        busy, pages, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and pages == done and pages > 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 50
    engine.dispose()


def test_under_continuous_writes_the_log_starts_over(tmp_path, monkeypatch):
    """Writers that never pause would keep a passive checkpoint from ever finishing the log;
    past the limit the thread checkpoints once with the writers held, and the log restarts."""
    monkeypatch.setattr(sqlite_engine, "CHECKPOINT_INTERVAL", 0.05)
    monkeypatch.setattr(sqlite_engine, "GATED_AFTER_PAGES", 200)
    engine = _engine(tmp_path)
    checkpointer = sqlite_engine.checkpointer_of(engine)
    stop = time.monotonic() + 3
    peak = 0
    while time.monotonic() < stop and checkpointer.gated < 2:
        _write(engine, 20)
    with engine.connect() as conn:
        peak = conn.execute(text("PRAGMA wal_checkpoint(PASSIVE)")).fetchone()[1]
    assert checkpointer.gated >= 1
    assert peak < 20 * 200  # restarted, not grown with every write
    engine.dispose()


def test_one_thread_per_process_and_a_checkpointer_goes_with_its_engine(tmp_path):
    first = _engine(tmp_path / "a")
    second = _engine(tmp_path / "b")
    assert len(_threads()) == 1
    watched = sqlite_engine._CHECKPOINT_THREAD.watching()
    gone = sqlite_engine.checkpointer_of(first)
    assert gone in watched and sqlite_engine.checkpointer_of(second) in watched
    first.dispose()
    del first, gone, watched

    def paths():
        gc.collect()  # the thread may hold it for the length of one visit
        return [c.path for c in sqlite_engine._CHECKPOINT_THREAD.watching()]

    deadline = time.monotonic() + 5
    while tmp_path / "a" / "w.db" in paths() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tmp_path / "a" / "w.db" not in paths() and tmp_path / "b" / "w.db" in paths()
    second.dispose()


def test_a_forked_child_starts_its_own_thread(tmp_path):
    """RQ forks a work horse per job; threads do not survive a fork."""
    engine = _engine(tmp_path)  # this process's thread runs
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_inherited, args=(engine, out))
    child.start()
    child.join(20)
    assert out.get(timeout=5) == 1
    engine.dispose()


def _inherited(engine, out) -> None:
    engine.dispose(close=False)  # as Services does after a fork
    with engine.connect():
        pass
    out.put(sum(t.name == "sqlite-checkpoint" for t in threading.enumerate()))


def test_gunicorn_workers_freeze_what_they_loaded(monkeypatch, tmp_path):
    # The settings prepare the metrics folder; here in a folder of the test's own, restored.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("CALLROUTER_METRICS_MASTER", "")
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    try:
        conf.post_worker_init(None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_worker_freezes_before_it_forks(environ, monkeypatch):
    """`python worker.py` freezes what it loaded before RQ forks the first work horse."""
    import worker

    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    seen = []
    options = {}

    class Worker:
        def __init__(self, queues, connection, **kwargs):
            self.queues = queues
            options.update(kwargs)

        def queue_names(self):
            return self.queues

        def work(self, **_kw):
            seen.append(gc.get_freeze_count())

    monkeypatch.setattr(worker, "Worker", Worker)
    try:
        assert worker.main(["--burst"]) == 0
    finally:
        gc.unfreeze()
    assert seen and seen[0] > 0
    # Another worker takes the scheduler over within a minute of its lock (61 s) expiring.
    assert options["maintenance_interval"] <= 60


EXIT_WHILE_CHECKPOINTING = """
import sys, uuid
from sqlalchemy import text
from callrouter import sqlite_engine
sqlite_engine.CHECKPOINT_INTERVAL = 0.0005  # always busy when the interpreter exits
engine = sqlite_engine.make_engine("sqlite:///" + sys.argv[1])
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, v TEXT)"))
for _ in range(300):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:i, :v)"), {"i": uuid.uuid4().hex, "v": "x"})
"""


def test_the_process_exits_cleanly_in_the_middle_of_a_checkpoint(tmp_path):
    """The thread is stopped between two checkpoints before the interpreter shuts down (a
    daemon thread inside SQLite at shutdown, its connection closed under it, crashed the
    process now and then)."""
    import subprocess
    import sys

    for run in range(12):
        proc = subprocess.run(
            [sys.executable, "-c", EXIT_WHILE_CHECKPOINTING, str(tmp_path / f"e{run}.db")],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 0, (run, proc.returncode, proc.stderr[-800:])


def test_the_log_goes_with_the_engines_last_connection(tmp_path, monkeypatch):
    """The checkpointer holds no connection between visits: once the engine's connections
    close, the last one folds the log into the database file and removes it (a connection
    held open kept a damaged file readable through its log)."""
    monkeypatch.setattr(sqlite_engine, "CHECKPOINT_INTERVAL", 0.02)
    engine = _engine(tmp_path)
    checkpointer = sqlite_engine.checkpointer_of(engine)
    _write(engine, 20)
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints < 2 and time.monotonic() < deadline:
        _write(engine, 1)
        time.sleep(0.03)
    assert checkpointer.checkpoints >= 2
    engine.dispose()
    wal = tmp_path / "w.db-wal"
    deadline = time.monotonic() + 5
    while wal.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not wal.exists()
