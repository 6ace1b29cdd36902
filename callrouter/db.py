"""Database engine, sessions and schema migrations (Alembic).

SQLite under instance/ by default, PostgreSQL in production. SQLite runs in WAL mode with
`synchronous=NORMAL`: the webhook writes one small transaction per request, and the default
rollback journal would make that the bottleneck of every call.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, lock_dir: Path) -> None:
    """Bring the schema to the newest migration; safe when several processes start at once."""
    from alembic import command

    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several machines sharing one database: serialise on the server too.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72791)")
            cfg = _alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")


def insert_ignore(session: Session, table, values: dict) -> bool:
    """INSERT that does nothing when the row exists (on any unique key); True if inserted.

    One statement instead of select-then-insert: the webhook's hot path, and safe when two
    deliveries of the same webhook race.
    """
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    result = session.execute(insert(table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)
