"""Typed readers for the directory's values: texts, numbers, ids, menu keys, phone numbers and
opening hours. Each reports what is wrong at its key path and returns what it could read
(None, an empty list or the default)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import phonenumbers

from callrouter.directory.located import _Located
from callrouter.directory.model import ALWAYS, DAYS, Span, WeeklyHours

_PREFIX_RE = re.compile(r"^\+[1-9]\d{1,13}\*$")
_DIGIT_RE = re.compile(r"^[0-9]$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SPAN_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class _Readers:
    """The small readers that the section validators are built from; problems go to `loc`."""

    def __init__(self, loc: _Located):
        self.loc = loc

    # -- small typed readers -------------------------------------------------

    def mapping(self, value: Any, path: str) -> dict | None:
        if not isinstance(value, dict):
            self.loc.error(path, "expected a mapping of keys")
            return None
        return value

    def keys(self, value: dict, allowed: set[str], path: str, required: set[str]) -> None:
        for key in value:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.loc.error(self.sub(path, key), f"unknown key (allowed: {hint})")
        for key in sorted(required - set(value)):
            self.loc.error(path, f"missing required key '{key}'")

    @staticmethod
    def sub(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def text(self, value: Any, path: str, default: str | None = None) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.loc.error(path, "expected a non-empty text")
            return None
        return value.strip()

    def integer(self, value: Any, path: str, default: int, lo: int, hi: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.loc.error(path, f"expected a whole number from {lo} to {hi}")
            return default
        return value

    def boolean(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.loc.error(path, "expected true or false")
            return default
        return value

    def ident(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not _ID_RE.match(value):
            self.loc.error(path, "expected an id of lower-case letters, digits, '-' or '_'")
            return None
        return value

    def digit(self, value: Any, path: str) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _DIGIT_RE.match(value):
            self.loc.error(path, "expected one menu key, 0-9")
            return None
        return value

    def seq(self, value: Any, path: str, required: bool = False) -> list:
        if value is None:
            if required:
                self.loc.error(path, "expected a non-empty list")
            return []
        if not isinstance(value, list) or (required and not value):
            self.loc.error(path, "expected a non-empty list" if required else "expected a list")
            return []
        return value

    def phone(self, value: Any, path: str) -> str | None:
        """Parse a number as dialled from the Netherlands and return it as E.164."""
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML reads an unquoted 0612345670 as an octal number and drops a leading '+':
            # take the text as written instead.
            value = self.loc.raw.get(path, str(value))
        if not isinstance(value, str):
            self.loc.error(path, "expected a phone number in quotes")
            return None
        try:
            parsed = phonenumbers.parse(value, "NL")
        except phonenumbers.NumberParseException:
            self.loc.error(path, f"'{value}' is not a phone number")
            return None
        if not phonenumbers.is_valid_number(parsed):
            self.loc.error(path, f"'{value}' is not a valid phone number")
            return None
        if parsed.country_code != 31 and not phonenumbers.can_be_internationally_dialled(parsed):
            self.loc.error(path, f"'{value}' cannot be dialled from the Netherlands")
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    def caller_id(self, value: Any, path: str) -> str | None:
        """A caller ID must be a number the provider can present: a fixed or non-geographic
        Dutch number or any valid number, never a premium-rate or shared-cost one (Twilio
        refuses those as From, errors 21210/21212)."""
        e164 = self.phone(value, path)
        if e164 is None:
            return None
        kind = phonenumbers.number_type(phonenumbers.parse(e164))
        if kind in (
            phonenumbers.PhoneNumberType.PREMIUM_RATE,
            phonenumbers.PhoneNumberType.SHARED_COST,
            phonenumbers.PhoneNumberType.TOLL_FREE,
        ):
            self.loc.error(
                path,
                f"{e164} cannot be shown as caller ID (premium-rate, "
                "shared-cost and free numbers are refused as From)",
            )
            return None
        return e164

    def hours(self, value: Any, path: str) -> WeeklyHours | None:
        if value is None:
            self.loc.error(path, "missing opening hours")
            return None
        if isinstance(value, str) and value.strip().lower() in ALWAYS:
            return WeeklyHours(tuple((Span(0, 1440),) for _ in DAYS))
        value = self.mapping(value, path)
        if value is None:
            return None
        days: list[tuple[Span, ...] | None] = [None] * 7
        ok = True
        for key, spec in value.items():
            kpath = self.sub(path, str(key))
            indexes = self._day_range(str(key), kpath)
            spans = self._spans(spec, kpath)
            if indexes is None or spans is None:
                ok = False
                continue
            for i in indexes:
                if days[i] is not None:
                    self.loc.error(kpath, f"{DAYS[i]} is given more than once (overlapping days)")
                    ok = False
                days[i] = spans
        if not ok:
            return None
        return WeeklyHours(tuple(d or () for d in days))

    def _day_range(self, key: str, path: str) -> list[int] | None:
        key = key.strip().lower()
        if key in ("daily", "mon-sun"):
            return list(range(7))
        if "," in key:  # "sat,sun"
            out: list[int] = []
            for part in key.split(","):
                sub = self._day_range(part, path)
                if sub is None:
                    return None
                out += sub
            return out
        parts = key.split("-")
        if len(parts) == 1 and key in DAYS:
            return [DAYS.index(key)]
        if len(parts) == 2 and parts[0] in DAYS and parts[1] in DAYS:
            a, b = DAYS.index(parts[0]), DAYS.index(parts[1])
            if a < b:
                return list(range(a, b + 1))
        self.loc.error(path, f"'{key}' is not a day or day range such as mon-fri")
        return None

    def _spans(self, spec: Any, path: str) -> tuple[Span, ...] | None:
        if spec is False or (isinstance(spec, str) and spec.strip().lower() == "closed"):
            return ()
        if not isinstance(spec, str):
            self.loc.error(path, 'expected spans such as "08:30-12:00,13:00-17:00" or closed')
            return None
        spans = []
        for part in spec.split(","):
            m = _SPAN_RE.match(part.strip())
            if not m:
                self.loc.error(path, f"'{part.strip()}' is not a span such as 08:30-17:00")
                return None
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
                self.loc.error(path, f"'{part.strip()}' holds an impossible time")
                return None
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if end <= start:
                self.loc.error(path, f"'{part.strip()}' ends before it starts")
                return None
            spans.append(Span(start, end))
        spans.sort(key=lambda s: s.start)
        for a, b in zip(spans, spans[1:], strict=False):
            if b.start < a.end:
                self.loc.error(path, "spans overlap")
                return None
        return tuple(spans)

    def closed_on(self, value: Any, path: str) -> frozenset[date]:
        out = set()
        for i, item in enumerate(self.seq(value, path)):
            if isinstance(item, date):
                out.add(item)
            elif isinstance(item, str):
                try:
                    out.add(date.fromisoformat(item))
                except ValueError:
                    self.loc.error(f"{path}[{i}]", f"'{item}' is not a date such as 2026-12-24")
            else:
                self.loc.error(f"{path}[{i}]", "expected a date such as 2026-12-24")
        return frozenset(out)

    def numbers_and_blocks(
        self, value: Any, path: str, required: bool
    ) -> tuple[list[str], list[str]]:
        numbers, prefixes = [], []
        for i, item in enumerate(self.seq(value, path, required=required)):
            ipath = f"{path}[{i}]"
            if isinstance(item, str) and item.strip().endswith("*"):
                block = item.strip().replace(" ", "")
                if not _PREFIX_RE.match(block):
                    self.loc.error(ipath, f"'{item}' is not a number block such as \"+3130286*\"")
                else:
                    prefixes.append(block[:-1])
            elif (e164 := self.phone(item, ipath)) is not None:
                numbers.append(e164)
        return numbers, prefixes
