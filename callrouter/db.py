"""Database engine, sessions and schema migrations (Alembic).

SQLite under instance/ by default (WAL mode, a write gate and a checkpointer: see
`sqlite_engine`), PostgreSQL in production.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, bindparam, create_engine, func, literal_column, text
from sqlalchemy.orm import Session, sessionmaker

from callrouter import sqlite_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return sqlite_engine.make_engine(url)
    # pool_pre_ping costs a round trip per checkout. A look at the idle socket instead (no
    # round trip) was tried and refused healthy fresh connections under CI's load: keep the
    # ping until a check through libpq's own state is proven.
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


_LOCKS = {"rollup": 72792}  # PostgreSQL advisory lock keys (72791: the migrations)


def serialise(session, name: str) -> None:
    """Make the session's transaction wait for, and then exclude, every other transaction
    that serialises on `name` until it ends. PostgreSQL: an advisory transaction lock.
    SQLite takes none: its writers go one at a time (the write gate of `sqlite_engine`), so
    a transaction is serialised from its first write on; the caller writes first and only
    then reads what another transaction's writes could change (figures._store inserts its
    claim before it looks for marks)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCKS[name]})


_INSERT_IGNORE: dict = {}


def insert_ignore(conn, table, values: dict) -> bool:
    """INSERT that does nothing when the row exists (on any unique key); True if inserted.

    One statement instead of select-then-insert: the webhook's hot path, and safe when two
    deliveries of the same webhook race. The statement is built once per table and dialect.
    """
    if hasattr(conn, "bind") and conn.bind is not None and not hasattr(conn, "exec_driver_sql"):
        conn = conn.connection()  # an ORM session: its connection, in its transaction
    dialect = conn.dialect
    key = (dialect.name, table.name, tuple(values))
    prepared = _INSERT_IGNORE.get(key)
    if prepared is None:
        prepared = _INSERT_IGNORE[key] = _prepare_insert_ignore(dialect, table, tuple(values))
    sql, order, processors = prepared
    # Compiled once, run as the driver's own SQL with each column type's bind processing:
    # the same statement SQLAlchemy would send, without building it again per webhook.
    params = {k: (processors[k](v) if processors.get(k) else v) for k, v in values.items()}
    if order is not None:
        result = conn.exec_driver_sql(sql, tuple(params[k] for k in order))
    else:
        result = conn.exec_driver_sql(sql, params)
    return bool(result.rowcount)


def _prepare_insert_ignore(dialect, table, keys: tuple[str, ...]):
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values({k: bindparam(k, type_=table.c[k].type) for k in keys})
    compiled = stmt.on_conflict_do_nothing().compile(dialect=dialect)
    order = tuple(compiled.positiontup) if compiled.positional else None
    processors = {k: table.c[k].type.bind_processor(dialect) for k in keys}
    from sqlalchemy import JSON

    for k in keys:
        if isinstance(table.c[k].type, JSON) and dialect.name == "postgresql":
            # psycopg adapts JSON through its wrapper (SQLAlchemy does this at execute time).
            from psycopg.types.json import Json

            processors[k] = lambda v: None if v is None else Json(v)
    return str(compiled), order, processors


_PREPARED: dict = {}


def run_prepared(conn, stmt, params: dict):
    """Execute a Core statement that is reused on a hot path: compiled once per dialect, then
    sent as the driver's SQL with each bind's type processing. For writes: result rows come
    back as the driver gives them, without type processing (no IN lists either: POSTCOMPILE
    parameters are not supported here)."""
    dialect = conn.dialect
    key = (dialect.name, id(stmt))
    prepared = _PREPARED.get(key)
    if prepared is None or prepared[0] is not stmt:
        prepared = _PREPARED[key] = _prepare(dialect, stmt)
    return _execute_prepared(conn, prepared, params)


def run_raw(conn, stmt, params: dict | None = None):
    """Execute a Core SELECT as the driver's SQL (binds processed, rows left as the driver
    gives them): for reads of many rows whose values need no conversion, such as reports."""
    return _execute_prepared(conn, _prepare(conn.dialect, stmt), params or {})


_UTC_TEXT = {"hour": (13, "YYYY-MM-DD HH24"), "minute": (16, "YYYY-MM-DD HH24:MI")}


def utc_text(dialect, col, unit: str = "hour"):
    """An instant column as UTC text to the hour ('YYYY-MM-DD HH') or minute ('... HH:MM'),
    the same text on both databases: a report groups or buckets by it without converting
    every value to a datetime. SQLite stores instants as UTC text, so a prefix of it is the
    hour (cheaper than strftime, which parses every value)."""
    length, pattern = _UTC_TEXT[unit]
    if dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", col), literal_column(f"'{pattern}'"))
    # Literal positions: the same SQL text in SELECT and GROUP BY, so SQLite sees one expression.
    return func.substr(col, literal_column("1"), literal_column(str(length)))


def whole_seconds(dialect, col):
    """Seconds rounded half up, as Python's floor(x + 0.5). PostgreSQL's round() of a double
    rounds half to even (and a cast to numeric costs a third of a report), so floor(x + 0.5)
    there; SQLite's round() is half up already."""
    if dialect.name == "postgresql":
        return func.floor(col + literal_column("0.5"))
    return func.round(col)


def words(dialect, *cols):
    """Aggregate: the rows' `cols` as one text, every value a word (read back with
    `from_words`); only for values that never hold white space, such as directory ids
    (`[a-z0-9_-]`) and states.

    As a correlated subquery in a report's SELECT list it gathers a parent's children (the
    steps of each case) by one index look-up per parent: both databases run such a subquery
    per row, where a join of the same rows lets PostgreSQL's planner hash the whole child
    table instead. Words, not JSON: splitting a text is a tenth of the cost of parsing JSON
    for every row."""
    space = literal_column("' '")
    row = cols[0]
    for col in cols[1:]:
        row = row.concat(space).concat(col)
    if dialect.name == "postgresql":
        return func.string_agg(row, space)
    return func.group_concat(row, space)


def from_words(value: str | None, width: int) -> list[tuple[str, ...]]:
    """A `words` value as rows of `width` values (no rows: NULL on both databases)."""
    if not value:
        return []
    it = iter(value.split())
    return list(zip(*([it] * width), strict=True))


def _prepare(dialect, stmt):
    compiled = stmt.compile(dialect=dialect)
    if "POSTCOMPILE" in str(compiled):
        raise ValueError("prepared statements do not take expanding IN parameters")
    from sqlalchemy import JSON

    processors = {}
    for name, bind in compiled.binds.items():
        proc = bind.type.bind_processor(dialect)
        if proc is not None and not isinstance(bind.type, JSON):
            processors[name] = proc
    order = tuple(compiled.positiontup) if compiled.positional else None
    return stmt, compiled, str(compiled), order, processors


def _execute_prepared(conn, prepared, params: dict):
    _, compiled, sql, order, processors = prepared
    values = compiled.construct_params(params)
    values = {k: (processors[k](v) if k in processors else v) for k, v in values.items()}
    if order is not None:
        return conn.exec_driver_sql(sql, tuple(values[k] for k in order))
    return conn.exec_driver_sql(sql, values)


# --------------------------------------------------------------------------- the hot path


class _Rows:
    """What the hot path reads of a statement's result: rowcount and the (driver's) rows,
    fetched at once so that the transaction can commit."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, cursor):
        self.rowcount = cursor.rowcount
        self.rows = cursor.fetchall() if cursor.description is not None else []

    def first(self):
        return self.rows[0] if self.rows else None

    def scalar(self):
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> list:
        return [r[0] for r in self.rows]


class _HotConnection:
    """A DB-API connection in one transaction, speaking the part of SQLAlchemy's Connection
    that `insert_ignore`, `run_prepared` and `run_once` use."""

    def __init__(self, dbapi_connection, dialect):
        self.dialect = dialect
        self._cursor = dbapi_connection.cursor()

    def exec_driver_sql(self, sql: str, params) -> _Rows:
        self._cursor.execute(sql, params)
        return _Rows(self._cursor)


@contextmanager
def hot(engine: Engine, *, each_statement: bool = False):
    """One short write transaction on the pooled DB-API connection itself, for the webhooks
    that every call sends (an insert and an update): the SQL SQLAlchemy would send, without
    its Connection, events and result objects, which cost about as much as SQLite's own work.
    On SQLite the cross-process write gate is taken, as for every transaction. Rows come
    back as the driver gives them (no type processing).

    `each_statement=True` is for a block whose statements need not be atomic together (one
    insert, then reads): on PostgreSQL each statement then commits by itself, one round trip
    instead of three (BEGIN with it, the statement, COMMIT); on SQLite nothing changes."""
    gate = sqlite_engine.gate_of(engine)
    raw = engine.raw_connection()
    dbapi = raw.dbapi_connection
    autocommit = each_statement and engine.dialect.name == "postgresql"
    if gate is not None:
        gate.acquire()
    try:
        if autocommit:
            dbapi.autocommit = True
        conn = _HotConnection(dbapi, engine.dialect)
        yield conn
        if not autocommit:
            raw.commit()
    except BaseException:
        if not autocommit:
            raw.rollback()
        raise
    finally:
        if autocommit:
            try:
                dbapi.autocommit = False
            except Exception:  # a broken connection: the pool replaces it
                raw.invalidate()
        if gate is not None:
            gate.release()
        raw.close()  # back to the pool


@contextmanager
def read(engine: Engine):
    """A read on the pooled DB-API connection, outside any write transaction (on SQLite
    without the write gate; on PostgreSQL in autocommit, one round trip instead of three):
    for a webhook's look-up that decides whether there is anything to write at all. Rows
    come back as the driver gives them."""
    raw = engine.raw_connection()
    dbapi = raw.dbapi_connection
    autocommit = engine.dialect.name == "postgresql"
    try:
        if autocommit:
            dbapi.autocommit = True
        yield _HotConnection(dbapi, engine.dialect)
    finally:
        try:
            if autocommit:
                dbapi.autocommit = False
            else:
                raw.rollback()  # ends the read's transaction where the driver opened one
        except Exception:  # a broken connection: the pool replaces it
            raw.invalidate()
        raw.close()


def run_once(conn, stmt):
    """A Core statement on a hot connection (or any Connection), compiled for this one use:
    for the rare branches of the hot path."""
    return _execute_prepared(conn, _prepare(conn.dialect, stmt), {})
