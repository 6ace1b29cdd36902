"""db.hot: the webhooks' write transaction on the driver's connection, on SQLite and
PostgreSQL: committed on success, rolled back on an error (and the SQLite write gate freed)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from callrouter import db
from callrouter.models import Call


def _row(sid: str) -> dict:
    return dict(
        id=uuid.uuid4().hex,
        call_sid=sid,
        received_at=datetime.now(UTC),
        from_hmac="h" * 64,
        from_masked="+31 6 ****5678",
        status="in-progress",
        caller_org="utrecht",
        identified_by="number",
        urgent=False,
        consent=False,
    )


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Call)).scalar()


def test_commits_once_and_a_retry_inserts_nothing(app):
    engine = app.extensions["callrouter"].engine
    with db.hot(engine) as h:
        assert db.insert_ignore(h, Call.__table__, _row("CA" + "1" * 32)) is True
    with db.hot(engine) as h:
        assert db.insert_ignore(h, Call.__table__, _row("CA" + "1" * 32)) is False
        found = db.run_once(h, select(Call.caller_org).where(Call.call_sid == "CA" + "1" * 32))
        assert found.scalar() == "utrecht"
    assert _count(engine) == 1


def test_an_error_rolls_back_and_frees_the_write_gate(app):
    """After a failed transaction nothing is written, and another thread's write goes through
    at once (on SQLite it would wait for the gate forever if it were still held)."""
    engine = app.extensions["callrouter"].engine
    with pytest.raises(RuntimeError), db.hot(engine) as h:
        db.insert_ignore(h, Call.__table__, _row("CA" + "2" * 32))
        raise RuntimeError("the handler failed")
    assert _count(engine) == 0
    done = threading.Event()

    def other():
        with db.hot(engine) as h:
            db.insert_ignore(h, Call.__table__, _row("CA" + "3" * 32))
        done.set()

    threading.Thread(target=other, daemon=True).start()
    assert done.wait(10)
    assert _count(engine) == 1


def test_each_statement_commits_by_itself_on_postgresql_only(app):
    """`each_statement=True`: on PostgreSQL the insert is its own transaction (kept when the
    block fails after it); on SQLite the block stays one transaction. Either way the pooled
    connection goes back as it came: the next block is atomic again."""
    engine = app.extensions["callrouter"].engine
    with pytest.raises(RuntimeError), db.hot(engine, each_statement=True) as h:
        db.insert_ignore(h, Call.__table__, _row("CA" + "4" * 32))
        raise RuntimeError("after the insert")
    assert _count(engine) == (1 if engine.dialect.name == "postgresql" else 0)
    before = _count(engine)
    for _ in range(3):  # whichever pooled connection comes next
        with pytest.raises(RuntimeError), db.hot(engine) as h:
            db.insert_ignore(h, Call.__table__, _row("CA" + uuid.uuid4().hex))
            raise RuntimeError("rolled back")
    assert _count(engine) == before


def test_a_connection_the_server_closed_is_replaced_before_use(app):
    """PostgreSQL: a pooled connection whose backend was terminated (a restart, an operator)
    is found dead at checkout and replaced: the webhook's write goes through. (On SQLite
    there is no server to close it.)"""
    engine = app.extensions["callrouter"].engine
    if engine.dialect.name != "postgresql":
        assert engine.dialect.name == "sqlite"
        return
    with db.hot(engine) as h:  # a pooled connection, and its backend's pid
        pid = db.run_once(h, select(func.pg_backend_pid())).scalar()
    admin = sa_engine(engine)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    admin.dispose()
    import time

    time.sleep(0.2)  # the server's goodbye reaches the pooled socket
    with db.hot(engine) as h:
        assert db.insert_ignore(h, Call.__table__, _row("CA" + "5" * 32)) is True
        assert db.run_once(h, select(func.pg_backend_pid())).scalar() != pid
    assert _count(engine) == 1


def sa_engine(engine):
    from sqlalchemy import create_engine

    return create_engine(engine.url, isolation_level="AUTOCOMMIT")
