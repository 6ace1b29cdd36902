"""Keyset pagination: pages go newest first with a cursor `(time, id)` instead of OFFSET, so
page 1,000 costs what page 1 costs."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from sqlalchemy import and_, or_

from callrouter.dashboard import dates

PAGE_SIZE = 50
API_PAGE_MAX = 500


def encode_cursor(moment: datetime, ident: str) -> str:
    raw = f"{moment.astimezone(UTC).isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor or len(cursor) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        moment = datetime.fromisoformat(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if moment.tzinfo is None or len(ident) > 64:
        return None
    dates.moment_in_window(moment, "cursor")
    return moment.astimezone(UTC), ident


def before(col_time, col_id, cursor):
    """Rows after the cursor's row in newest-first order (older, or as old with a lower id)."""
    moment, ident = cursor
    return or_(col_time < moment, and_(col_time == moment, col_id < ident))
