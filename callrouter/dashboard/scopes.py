"""Tenant isolation: which rows an organisation may see, as SQL conditions (the one place).

Every dashboard and API read, and the figures computed from the call log, add one of these:
a municipality sees the calls its staff made, an agency the calls its lines received (a
municipality that is both sees both); an admin (`org` None) sees everything.
"""

from __future__ import annotations

from sqlalchemy import exists, or_

from callrouter import cases as cases_mod
from callrouter.models import Call, CallbackRequest, Case, Transfer


def call_scope(org: str | None):
    """A municipality's calls, or the calls that reached an organisation's lines (the chosen
    line, or any transfer of the call, such as the steps of a life-event chain)."""
    if org is None:
        return True
    return or_(
        Call.caller_org == org,
        Call.target_org == org,
        exists().where(Transfer.call_id == Call.id, Transfer.target_org == org),
    )


def transfer_scope(org: str | None):
    return True if org is None else or_(Transfer.caller_org == org, Transfer.target_org == org)


def case_scope(org: str | None):
    """A municipality's cases, or the cases an organisation took part in (a step or a
    consent); never a case it was not part of."""
    if org is None:
        return True
    return or_(Case.caller_org == org, cases_mod.involves(org))


def callback_scope(org: str | None):
    return (
        True
        if org is None
        else or_(CallbackRequest.caller_org == org, CallbackRequest.target_org == org)
    )
