"""One LDV record's fields, and the ids that tie records together (pure: no IO).

A call's records share one trace, whose id is the call's own id (a random 128-bit value, as
W3C Trace Context asks of a trace id). A record's span id is derived from its trace, its
kind and a key (the leg, the consent, ...), so that a webhook delivered twice, or a job run
again, writes no second record: the span id is unique in the table. The call-received
record is the root of its trace; the others of the call are its children.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime

from callrouter.ldv.register import KINDS, Register

OK, UNSET, ERROR = "Ok", "Unset", "Error"  # the standard's status values
# dpl.core.data_subject_id_type: what the subject id is. Never a number in clear: a keyed
# pseudonym of a phone number (privacy.Pseudonymiser), or a case, which stands for the
# citizen (callrouter knows no other identifier of the citizen).
SUBJECT_NUMBER = "urn:callrouter:betrokkene:telefoonnummer-pseudoniem"
SUBJECT_CASE = "urn:callrouter:betrokkene:zaak"
ROOT = "call-received"
SERVICE = {"service.name": "callrouter", "service.version": "0.1.0"}  # never changed in place

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_trace() -> str:
    """A trace of its own, for a processing that belongs to no call (a supervisor's look)."""
    return uuid.uuid4().hex


def span_id(trace_id: str, kind: str, key: str = "") -> str:
    digest = hashlib.sha256(f"{trace_id}/{kind}/{key}".encode()).hexdigest()
    return digest[:16] if digest[:16] != "0" * 16 else digest[16:32]


def root_span(trace_id: str) -> str:
    return span_id(trace_id, ROOT)


def traceparent(trace_id: str, span: str) -> str:
    """W3C Trace Context: version 00, sampled (every processing is logged: no sampling)."""
    return f"00-{trace_id}-{span}-01"


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    m = _TRACEPARENT.match((value or "").strip().lower())
    if not m or set(m.group(1)) == {"0"} or set(m.group(2)) == {"0"}:
        return None
    return m.group(1), m.group(2)


def transfer_traceparent(call_id: str, transfer_id: str) -> str:
    """What the receiving organisation continues: the record of the context shared with it."""
    return traceparent(call_id, span_id(call_id, "context-shared", transfer_id))


def case_span(opening_call_id: str, case_id: str) -> str:
    """The span of a case's case-opened record, in its opening call's trace."""
    return span_id(opening_call_id, "case-opened", case_id)


def case_traceparent(opening_call_id: str | None, case_id: str) -> str | None:
    """The case's own trace: its opening call's case-opened record."""
    if not opening_call_id:
        return None
    return traceparent(opening_call_id, case_span(opening_call_id, case_id))


def record(
    register: Register,
    kind: str,
    *,
    trace_id: str,
    at: datetime,
    key: str = "",
    subject: str | None = None,
    subject_type: str = SUBJECT_NUMBER,
    parent: str | None = "",
    case_id: str | None = None,
    attributes: dict | None = None,
    status: str = OK,
    end: datetime | None = None,
    links: list[tuple[str, str]] | None = None,
) -> dict:
    """The row of one record. `parent=""` (the default) makes it a child of its trace's root
    (the call-received record); None makes it a root itself."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of processing: {kind}")
    span = span_id(trace_id, kind, key)
    if parent == "":
        parent = None if kind == ROOT else root_span(trace_id)
    return dict(
        trace_id=trace_id,
        span_id=span,
        parent_span_id=parent,
        name=kind,
        status=status,
        start_time=at,
        end_time=end or at,
        processing_activity_id=register.for_kind(kind).uri,
        data_subject_id=subject,
        data_subject_id_type=subject_type if subject else None,
        case_id=case_id,
        attributes={k: v for k, v in (attributes or {}).items() if v is not None},
        links=[list(link) for link in links] if links else None,
        resource=SERVICE,
    )
