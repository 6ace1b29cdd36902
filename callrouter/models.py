"""The call log tables: inbound calls, transfers, outbound legs, webhook events, callbacks.

Append-only events plus derived state: every webhook is kept once (deduplicated on its
natural key) and the rows of calls, transfers and legs hold the state derived from them.
Phone numbers appear only as keyed HMAC pseudonyms and masked display forms.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UTCDateTime(TypeDecorator):
    """Instants stored in UTC and read back timezone-aware, on SQLite as on PostgreSQL.

    (SQLite keeps no offset: without this, a local time would be read back as if it were UTC.)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TS = UTCDateTime()


def _where(condition: str) -> dict:  # a partial index's condition, on both databases
    return {f"{db}_where": text(condition) for db in ("sqlite", "postgresql")}


class Call(Base):
    """One inbound call to the internal number."""

    __tablename__ = "calls"
    # The call log is read newest first within one organisation (the dashboard's scope).
    __table_args__ = (
        Index("ix_calls_caller_received", "caller_org", "received_at"),
        Index("ix_calls_target_received", "target_org", "received_at"),
        Index("ix_calls_line_received", "line_id", "received_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller_org: Mapped[str | None] = mapped_column(String(64))
    identified_by: Mapped[str | None] = mapped_column(String(16))  # number | pin
    # Not indexed: nothing looks calls up by number; each index costs the incoming insert.
    from_hmac: Mapped[str | None] = mapped_column(String(64))
    from_masked: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(TS, index=True)
    menu_done_at: Mapped[datetime | None] = mapped_column(TS)
    ended_at: Mapped[datetime | None] = mapped_column(TS)
    target_org: Mapped[str | None] = mapped_column(String(64))
    line_id: Mapped[str | None] = mapped_column(String(64))  # see ix_calls_line_received
    selected_by: Mapped[str | None] = mapped_column(String(16))  # digits | speech
    # The directory's term (name, topic or keyword) that speech matched: never the raw phrase,
    # which may hold what a citizen said about themselves.
    selected_term: Mapped[str | None] = mapped_column(String(100))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str | None] = mapped_column(String(20))
    duration_s: Mapped[int | None] = mapped_column(Integer)
    purged_at: Mapped[datetime | None] = mapped_column(TS)  # personal fields removed (retention)
    case_id: Mapped[str | None] = mapped_column(String(32))  # not indexed: the webhook's insert


class Transfer(Base):
    """One warm transfer attempt from a call to a professional line (its hunt group)."""

    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_caller_created", "caller_org", "created_at"),
        # An organisation's transfers by time; with the call, so that the call log of an
        # agency finds the calls that reached it here (PostgreSQL hashes that set), not in
        # every transfer's call id.
        Index("ix_transfers_target_created", "target_org", "created_at", "call_id"),
        # A call's transfers, and whether one reached an organisation (the
        # dashboard's scope of an agency) without reading the rows.
        Index("ix_transfers_call_target", "call_id", "target_org"),
        # Covers the network report's scans (it reads only these columns), so a
        # year of transfers is read from a narrow index, not the wide rows.
        Index(
            "ix_transfers_report",
            "created_at",
            "line_id",
            "direction",
            "result",
            "selected_term",
            "time_to_answer_s",
            "accepted_at",
            "step",
            "case_id",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # also the conference name
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))  # ix_transfers_call_target
    caller_org: Mapped[str | None] = mapped_column(String(64))
    target_org: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(64), index=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))  # dialling | connected | ended
    outcome: Mapped[str | None] = mapped_column(String(32), index=True)
    hunt_position: Mapped[int] = mapped_column(Integer, default=0)
    worker_call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    conference_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(TS)  # indexed first in ix_transfers_report
    ringing_at: Mapped[datetime | None] = mapped_column(TS)
    accepted_at: Mapped[datetime | None] = mapped_column(TS)
    citizen_added_at: Mapped[datetime | None] = mapped_column(TS)
    worker_left_at: Mapped[datetime | None] = mapped_column(TS)
    ended_at: Mapped[datetime | None] = mapped_column(TS)
    hold_wanted: Mapped[bool | None] = mapped_column(Boolean)  # the professional's hold, desired
    # Where the worker is (flows.warm_transfer: waiting | talking | menu | away | gone), and the
    # conference the worker joined last (another than the conversation's: alone).
    worker_place: Mapped[str | None] = mapped_column(String(16))
    worker_conference_sid: Mapped[str | None] = mapped_column(String(64))
    time_to_answer_s: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    minutes_saved: Mapped[float | None] = mapped_column(Float)
    case_id: Mapped[str | None] = mapped_column(String(32), index=True)
    step: Mapped[int | None] = mapped_column(Integer)  # position in the case's chain (0-based)
    consent_level: Mapped[str | None] = mapped_column(String(16))  # none | case | contact
    # None: the worker calls a professional line; "to-worker": a professional calls back on a
    # case and the worker who opened it is rung (the way back).
    direction: Mapped[str | None] = mapped_column(String(16))
    # What the worker (or an agency supervisor) said came of it: resolved | partial |
    # unresolved | wrong-line | unknown; for a wrong line, where it should have gone.
    result: Mapped[str | None] = mapped_column(String(16), index=True)
    result_at: Mapped[datetime | None] = mapped_column(TS)
    result_by: Mapped[str | None] = mapped_column(String(16))  # worker | supervisor
    right_org: Mapped[str | None] = mapped_column(String(64))
    right_line: Mapped[str | None] = mapped_column(String(64))
    # The call's speech term, when it chose this very line (the report groups by it).
    selected_term: Mapped[str | None] = mapped_column(String(100))


class Leg(Base):
    """One outbound call placed for a transfer: a professional's number or the citizen."""

    __tablename__ = "legs"
    __table_args__ = (UniqueConstraint("transfer_id", "kind", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # professional | citizen
    position: Mapped[int] = mapped_column(Integer)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    number_hmac: Mapped[str] = mapped_column(String(64))
    number_masked: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))  # queued ... completed | busy | no-answer ...
    outcome: Mapped[str | None] = mapped_column(String(32))  # accepted | declined | no-answer ...
    whisper_plays: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TS)
    answered_at: Mapped[datetime | None] = mapped_column(TS)
    accepted_at: Mapped[datetime | None] = mapped_column(TS)
    ended_at: Mapped[datetime | None] = mapped_column(TS)
    left_at: Mapped[datetime | None] = mapped_column(TS)  # its participant-leave


class Event(Base):
    """A webhook as received, kept once. The natural key makes duplicates no-ops."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "sid", "event", "sequence"),
        Index("ix_events_call_received", "call_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))  # call | leg | conference | voice
    sid: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(96))
    sequence: Mapped[int] = mapped_column(Integer, default=-1)
    call_id: Mapped[str | None] = mapped_column(String(32))
    transfer_id: Mapped[str | None] = mapped_column(String(32), index=True)
    received_at: Mapped[datetime] = mapped_column(TS)
    detail: Mapped[dict | None] = mapped_column(JSON)


class CallbackRequest(Base):
    """A request to call the worker back when the line is open, professional first.

    States: pending (scheduled) -> dialling (professional's phone rings) -> connecting
    (professional accepted, worker being dialled) -> connected -> done; or back to pending
    for a retry; finally failed or cancelled. The row, not the queue, is the source of truth.
    """

    __tablename__ = "callback_requests"
    __table_args__ = (
        Index("ix_callbacks_line_due", "line_id", "state", "planned_at"),
        # One request per call and line: a chain of a case may leave several.
        UniqueConstraint("call_id", "line_id", name="uq_callback_requests_call_line"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(String(32), index=True)
    transfer_id: Mapped[str | None] = mapped_column(String(32))
    caller_org: Mapped[str | None] = mapped_column(String(64), index=True)
    target_org: Mapped[str] = mapped_column(String(64), index=True)
    line_id: Mapped[str] = mapped_column(String(64), index=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(16))  # closed | unanswered | asked
    worker_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    worker_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    worker_masked: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(32))
    requested_at: Mapped[datetime] = mapped_column(TS, index=True)
    planned_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)  # professional leg
    number_index: Mapped[int | None] = mapped_column(Integer)  # hunt-group number of the attempt
    confirmed_at: Mapped[datetime | None] = mapped_column(TS)  # SMS confirmation sent
    worker_call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(TS)
    done_at: Mapped[datetime | None] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


# --------------------------------------------------------------------------- dashboard and API


class User(Base):
    """A dashboard account: an admin sees everything, a supervisor one organisation's calls."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    role: Mapped[str] = mapped_column(String(16))  # admin | supervisor
    org_id: Mapped[str | None] = mapped_column(String(64))  # a caller or organisation id
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(TS)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TS)
    last_login_at: Mapped[datetime | None] = mapped_column(TS)


class WebSession(Base):
    """A logged-in browser session, held on the server: logging out deletes the row, so an old
    cookie replayed afterwards finds nothing. Only a hash of the cookie's token is stored."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    last_seen_at: Mapped[datetime] = mapped_column(TS)


class ApiToken(Base):
    """A bearer token of the read-only API, scoped like a user; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[str | None] = mapped_column(String(64))  # None: every organisation
    created_at: Mapped[datetime] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)


class AuditEntry(Base):
    """Who did what to which object, from where, with what result (the BIO logging fields).
    Never a password, a token or a full phone number."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(TS)
    actor: Mapped[str] = mapped_column(String(120))  # user:email | token:name | anonymous
    action: Mapped[str] = mapped_column(String(40))  # login | logout | lockout | view | ...
    object: Mapped[str | None] = mapped_column(String(120))
    result: Mapped[str] = mapped_column(String(16))  # success | failure | denied
    origin: Mapped[str | None] = mapped_column(String(64))  # client address
    detail: Mapped[dict | None] = mapped_column(JSON)


# --------------------------------------------------------------------------- cases


class Case(Base):
    """A citizen's question, opened by a front-desk worker: one reference for a chain of
    transfers, their consents, callbacks and outcomes. The worker's number is kept as a
    pseudonym (to recognise) and encrypted (so that a professional can reach them back)."""

    __tablename__ = "cases"
    # A reference is unique among open cases only: seven digits give a million references,
    # which are used again once a case has closed (after 30 days).
    __table_args__ = (
        Index("ix_cases_caller_opened", "caller_org", "opened_at"),
        Index(
            "uq_cases_open_reference",
            "reference",
            unique=True,
            **_where("state = 'open'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reference: Mapped[str] = mapped_column(String(7), index=True)  # 6 random digits + Damm
    caller_org: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(32), index=True)  # the opening call
    life_event: Mapped[str | None] = mapped_column(String(64), index=True)
    worker_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    worker_masked: Mapped[str | None] = mapped_column(String(32))
    worker_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))  # open | closed
    opened_at: Mapped[datetime] = mapped_column(TS, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class CaseStep(Base):
    """One organisation of a case: a step of a life event's chain, or a single transfer."""

    __tablename__ = "case_steps"
    __table_args__ = (
        UniqueConstraint("case_id", "position"),
        Index("ix_case_steps_org", "target_org", "case_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    position: Mapped[int] = mapped_column(Integer)
    line_id: Mapped[str] = mapped_column(String(64))
    target_org: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    # pending | ringing | connected | done | unanswered | closed | skipped | stopped
    state: Mapped[str] = mapped_column(String(16))
    transfer_id: Mapped[str | None] = mapped_column(String(32))
    callback_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(TS)


class Consent(Base):
    """What the citizen allows one organisation on one case; withdrawal is a record too."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_case_org", "case_id", "target_org"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    target_org: Mapped[str] = mapped_column(String(64))
    choice: Mapped[str] = mapped_column(String(16))  # none | case | contact
    recorded_at: Mapped[datetime] = mapped_column(TS)
    recorded_by_org: Mapped[str | None] = mapped_column(String(64))
    recorded_by_hmac: Mapped[str | None] = mapped_column(String(64))
    transfer_id: Mapped[str | None] = mapped_column(String(32))
    withdrawn_at: Mapped[datetime | None] = mapped_column(TS)
    withdrawn_by: Mapped[str | None] = mapped_column(String(120))


class FigureCell(Base):
    """The figures of one local day, as one viewer may see them, per target organisation and
    line: a rollup of the call log for days that no longer change (see callrouter.figures).

    `viewer` is an organisation id or "*" (an admin: everything); `target_org` and `line_id`
    are "" where the call chose none. `answer_times` maps whole seconds to counts (a small
    histogram: medians stay exact when days are added up)."""

    __tablename__ = "figure_cells"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    viewer: Mapped[str] = mapped_column(String(64), primary_key=True)  # key order: one
    day: Mapped[date] = mapped_column(Date, primary_key=True)  # viewer's days are adjacent
    target_org: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    connected: Mapped[int] = mapped_column(Integer, default=0)
    callbacks: Mapped[int] = mapped_column(Integer, default=0)
    minutes_saved: Mapped[float] = mapped_column(Float, default=0.0)
    answer_times: Mapped[dict] = mapped_column(JSON, default=dict)


class FigureDay(Base):
    """A local day whose figures are rolled up in figure_cells (for the time zone `tz`)."""

    __tablename__ = "figure_days"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    built_at: Mapped[datetime] = mapped_column(TS)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    # What the stored day holds (callrouter.figures.ROLLUP_VERSION); 0 for a day stored
    # before versions were kept, or by a builder of an older release.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class CaseFigureCell(Base):
    """The case figures of one local day as one viewer may see them (a rollup like
    figure_cells, stored in the same transaction): cases opened that day, those that needed
    more than one organisation, life events, and the chains' steps reached."""

    __tablename__ = "case_figure_cells"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    viewer: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cases: Mapped[int] = mapped_column(Integer, default=0)
    multi_org: Mapped[int] = mapped_column(Integer, default=0)
    chains: Mapped[int] = mapped_column(Integer, default=0)
    chain_steps: Mapped[int] = mapped_column(Integer, default=0)
    chain_steps_done: Mapped[int] = mapped_column(Integer, default=0)
    chains_complete: Mapped[int] = mapped_column(Integer, default=0)
    life_events: Mapped[dict] = mapped_column(JSON, default=dict)


class NetworkCell(Base):
    """The network report's evidence of one line on one local day, as one viewer may see it
    (a rollup like figure_cells, stored in the same transaction; see callrouter.network_cells):
    transfers, answered, per local weekday and hour ("weekday hour" -> [transfers, answered]),
    answer times (whole seconds -> count), results (result -> count) and per speech term
    that chose the line [transfers with a known result, of them the wrong line]."""

    __tablename__ = "network_cells"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    viewer: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    line_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    slots: Mapped[dict] = mapped_column(JSON, default=dict)
    answer_times: Mapped[dict] = mapped_column(JSON, default=dict)
    results: Mapped[dict] = mapped_column(JSON, default=dict)
    terms: Mapped[dict] = mapped_column(JSON, default=dict)


class LdvRecord(Base):
    """A processing of personal data (callrouter.ldv); the OTLP export's outbox too."""

    __tablename__ = "ldv_records"
    __table_args__ = (
        Index("ix_ldv_trace", "trace_id", "start_time"),
        Index("ix_ldv_subject", "data_subject_id"),
        Index("ix_ldv_case", "case_id", **_where("case_id IS NOT NULL")),
        Index("ix_ldv_retention", "processing_activity_id", "end_time"),
        Index("ix_ldv_unexported", "id", **_where("exported_at IS NULL")),  # the outbox
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16), unique=True)
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # Unset | Ok | Error
    start_time: Mapped[datetime] = mapped_column(TS)
    end_time: Mapped[datetime] = mapped_column(TS)
    processing_activity_id: Mapped[str] = mapped_column(String(500))
    data_subject_id: Mapped[str | None] = mapped_column(String(64))
    data_subject_id_type: Mapped[str | None] = mapped_column(String(100))
    case_id: Mapped[str | None] = mapped_column(String(32))
    attributes: Mapped[dict] = mapped_column(JSON)
    links: Mapped[list | None] = mapped_column(JSON)  # [[trace_id, span_id], ...]
    resource: Mapped[dict] = mapped_column(JSON)
    exported_at: Mapped[datetime | None] = mapped_column(TS)  # acknowledged by the collector
