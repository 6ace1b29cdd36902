"""Writing LDV records, in the transaction of the change they describe.

`write` adds records on an open connection, ORM session or hot connection (`db.hot`); a
record whose span id is already there (a webhook delivered again, a job run twice) is left
as it is. `with_call` is the incoming webhook's: the call's row and its records in one
statement on PostgreSQL, where that webhook's insert commits by itself.
"""

from __future__ import annotations

import json
from typing import cast

from sqlalchemy import String, Table, bindparam, exists, literal_column, select, union_all
from sqlalchemy import cast as sql_cast
from sqlalchemy.types import JSON

from callrouter import db
from callrouter.models import Call, LdvRecord

TABLE = cast(Table, LdvRecord.__table__)
COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "processing_activity_id",
    "data_subject_id",
    "data_subject_id_type",
    "case_id",
    "attributes",
    "links",
    "resource",
)


def write(conn, rows: list[dict]) -> int:
    """Add the records; how many were new."""
    return sum(db.insert_ignore(conn, TABLE, row) for row in rows)


def with_call(conn, call_row: dict, rows: list[dict]) -> None:
    """Insert the call (nothing when its CallSid is there) and, only if it was new, its
    records: a retried webhook makes a new call id, whose records would be a second set."""
    if conn.dialect.name != "postgresql":
        # SQLite's INSERT takes no CTE: the call, then (only if it was new) its records in
        # one statement, inside the caller's transaction.
        if db.insert_ignore(conn, cast(Table, Call.__table__), call_row) and rows:
            sql, processors = _sqlite_records(conn.dialect, len(rows))
            conn.exec_driver_sql(sql, _values(rows, processors))
        return
    params = {}
    for i, row in enumerate(rows):
        for col in COLUMNS:
            value = row[col]
            if col in _JSON:
                value = _json(value)
            params[f"r{i}_{col}"] = value
    params.update(call_row)
    db.run_prepared(conn, _call_and_records(tuple(call_row), len(rows)), params)


_JSON = frozenset(c for c in COLUMNS if isinstance(TABLE.c[c].type, JSON))
# The resource is one shared dict (records.SERVICE): its text, once.
_SERVICE_JSON: dict[int, str] = {}


def _json(value) -> str | None:
    if not _SERVICE_JSON:
        from callrouter.ldv.records import SERVICE

        _SERVICE_JSON[id(SERVICE)] = json.dumps(SERVICE)
    if value is None:
        return None
    key = id(value)
    if key in _SERVICE_JSON:
        return _SERVICE_JSON[key]
    return json.dumps(value)


def _values(rows: list[dict], processors: tuple) -> tuple:
    """The rows' values in column order, each as the driver takes it (JSON as text)."""
    out = []
    for row in rows:
        for col, proc in zip(COLUMNS, processors, strict=True):
            value = row[col]
            if col in _JSON:
                value = _json(value)
            out.append(proc(value) if proc is not None and value is not None else value)
    return tuple(out)


_SQLITE: dict = {}


def _sqlite_records(dialect, n: int) -> tuple[str, tuple]:
    """INSERT of n records as SQLite's positional SQL, and each column's bind processing
    (a timestamp as SQLAlchemy stores it): built once, without SQLAlchemy per request."""
    if n not in _SQLITE:
        marks = "(" + ", ".join("?" for _ in COLUMNS) + ")"
        sql = f"INSERT INTO ldv_records ({', '.join(COLUMNS)}) VALUES " + ", ".join([marks] * n)
        processors = tuple(
            None if col in _JSON else TABLE.c[col].type.bind_processor(dialect) for col in COLUMNS
        )
        _SQLITE[n] = (sql, processors)
    return _SQLITE[n]


_STATEMENTS: dict = {}


def _param(i: int, col: str):
    """Row i's value of `col` (JSON as its text: the hot path serialises it itself)."""
    ctype = TABLE.c[col].type
    return bindparam(f"r{i}_{col}", type_=String() if isinstance(ctype, JSON) else ctype)


def _call_and_records(call_keys: tuple[str, ...], n: int):
    """WITH new_call AS (INSERT INTO calls ... ON CONFLICT DO NOTHING RETURNING id)
    INSERT INTO ldv_records SELECT ... WHERE EXISTS (SELECT FROM new_call): built once."""
    key = (call_keys, n)
    if key in _STATEMENTS:
        return _STATEMENTS[key]
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    calls = cast(Table, Call.__table__)
    new_call = (
        pg_insert(calls)
        .values({k: bindparam(k, type_=calls.c[k].type) for k in call_keys})
        .on_conflict_do_nothing()
        .returning(calls.c.id)
        .cte("new_call")
    )
    made = exists(select(literal_column("1")).select_from(new_call))
    selects = []
    for i in range(n):
        values = []
        for col in COLUMNS:
            # Typed: a NULL of the SELECT list would otherwise be text, which a timestamp or
            # JSON column does not take.
            values.append(sql_cast(_param(i, col), TABLE.c[col].type).label(col))
        selects.append(select(*values).where(made))
    body = selects[0] if n == 1 else union_all(*selects)
    stmt = TABLE.insert().from_select(list(COLUMNS), body).add_cte(new_call)
    _STATEMENTS[key] = stmt
    return stmt


PURGE_BATCH = 2000


def purge(engine, register, moment, keep_unsent: bool, record_of=None) -> int:
    """Delete the records past their activity's retention (`keep_unsent`: only those the
    collector has acknowledged, so that an export that waits loses nothing); how many.
    `record_of(first id, n)` gives the record of a batch, written in its transaction."""
    from datetime import timedelta

    from sqlalchemy import and_, delete, not_

    longest = max(a.retention_days for a in register.activities)
    known = [a.uri for a in register.activities]
    periods = [
        (TABLE.c.processing_activity_id == a.uri, a.retention_days) for a in register.activities
    ]
    # A record of an activity that the register no longer lists: its longest period.
    periods.append((not_(TABLE.c.processing_activity_id.in_(known)), longest))
    total = 0
    for condition, days in periods:
        cond = and_(condition, TABLE.c.end_time < moment - timedelta(days=days))
        if keep_unsent:
            cond = and_(cond, TABLE.c.exported_at.is_not(None))
        while True:
            with engine.begin() as conn:
                ids = (
                    conn.execute(select(TABLE.c.id).where(cond).limit(PURGE_BATCH)).scalars().all()
                )
                if ids:
                    conn.execute(delete(TABLE).where(TABLE.c.id.in_(ids)))
                    if record_of is not None:
                        write(conn, [record_of(ids[0], len(ids))])
            total += len(ids)
            if len(ids) < PURGE_BATCH:
                break
    return total
