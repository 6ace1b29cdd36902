"""The line directory: `config/lines.yaml` loaded once into frozen, validated values.

Every error names the file, the line and the key path, so that the administrator who keeps
the directory can fix it without reading code. This package does no network or database IO.

Its modules, each one room:

- `model`: the frozen values (lines, organisations, caller organisations, life events, opening
  hours) and the problems a file can have;
- `lookup`: the `Directory` with its lookup tables and queries, and its summary;
- `located`: YAML read with the source line of every key path;
- `readers`: the typed readers (texts, ids, menu keys, phone numbers, opening hours);
- `entries`: one caller organisation, organisation, line or life event;
- `validate`: `load` and `loads`, the whole file and the checks across entries.
"""

from __future__ import annotations

from callrouter.directory.lookup import Directory, summary
from callrouter.directory.model import (
    ALWAYS,
    DAY_NAMES_NL,
    DAYS,
    Caller,
    DirectoryError,
    LifeEvent,
    LifeEventStep,
    Line,
    Organisation,
    Problem,
    Span,
    WeeklyHours,
    weekday_name_nl,
)
from callrouter.directory.validate import load, loads

__all__ = [
    "ALWAYS",
    "DAYS",
    "DAY_NAMES_NL",
    "Caller",
    "Directory",
    "DirectoryError",
    "LifeEvent",
    "LifeEventStep",
    "Line",
    "Organisation",
    "Problem",
    "Span",
    "WeeklyHours",
    "load",
    "loads",
    "summary",
    "weekday_name_nl",
]
