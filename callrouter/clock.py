"""The service's clock: real time, except in the sandbox, where a trainer may skip ahead.

Every `now()` of the web process and the workers comes from here. Only when the sandbox is the
telephone network (`configure` is given its clock file) can an offset written to that file
move time forward, so that a callback planned for tomorrow 08:30 can be shown today. With real
Twilio credentials no offset is ever read.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

_path: Path | None = None
_cache: tuple[float, timedelta] = (-1.0, timedelta(0))


def configure(path: Path | None) -> None:
    global _path, _cache
    _path, _cache = path, (-1.0, timedelta(0))


def offset() -> timedelta:
    global _cache
    if _path is None:
        return timedelta(0)
    try:
        mtime = os.stat(_path).st_mtime
    except OSError:
        return timedelta(0)
    if mtime != _cache[0]:
        try:
            _cache = (mtime, timedelta(seconds=float(_path.read_text().strip() or 0)))
        except (OSError, ValueError):
            _cache = (mtime, timedelta(0))
    return _cache[1]


def now() -> datetime:
    return datetime.now(UTC) + offset()


def skip_to(moment: datetime, path: Path | None = None) -> timedelta:
    """Sandbox only: make `now()` show `moment` from here on (never backwards)."""
    path = path or _path
    if path is None:
        raise RuntimeError("the clock can only be moved in the sandbox")
    shift = max(timedelta(0), moment - datetime.now(UTC))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(shift.total_seconds()))
    os.replace(tmp, path)
    return shift
