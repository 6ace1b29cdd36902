"""The line directory: `config/lines.yaml` loaded once into frozen, validated values.

Every error names the file, the line and the key path, so that the administrator who keeps
the directory can fix it without reading code. This module does no network or database IO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
ALWAYS = ("24/7", "always")

_PREFIX_RE = re.compile(r"^\+[1-9]\d{1,13}\*$")
_DIGIT_RE = re.compile(r"^[0-9]$")
_CODE_RE = re.compile(r"^[0-9]{2,8}$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SPAN_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class DirectoryError(Exception):
    """The directory file is invalid; `problems` lists each problem with file, line and key."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


@dataclass(frozen=True)
class Span:
    """An opening span within one day, in minutes since local midnight (end may be 1440)."""

    start: int
    end: int


@dataclass(frozen=True)
class WeeklyHours:
    """Opening spans per weekday, Monday first."""

    days: tuple[tuple[Span, ...], ...]

    @property
    def always(self) -> bool:
        return all(d == (Span(0, 1440),) for d in self.days)


@dataclass(frozen=True)
class Line:
    id: str
    organisation_id: str
    topic: str
    spoken_topic: str
    digit: str
    keywords: tuple[str, ...]
    numbers: tuple[str, ...]
    urgent_numbers: tuple[str, ...]
    ring_seconds: int
    hours: WeeklyHours
    closed_on: frozenset[date]
    open_on_holidays: bool


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    spoken_name: str
    digit: str
    public_wait_minutes: int
    public_number: str | None
    lines: tuple[Line, ...]
    # The organisation's own professionals, who may call back on a case ("the way back").
    staff_numbers: tuple[str, ...] = ()
    staff_prefixes: tuple[str, ...] = ()

    def line_by_digit(self, digit: str) -> Line | None:
        if not digit:
            return None
        return next((ln for ln in self.lines if ln.digit == digit), None)


@dataclass(frozen=True)
class Caller:
    id: str
    name: str
    spoken_name: str
    code: str
    pin_hash: str | None
    numbers: tuple[str, ...]
    prefixes: tuple[str, ...]
    hours: WeeklyHours | None
    sms_confirmation: bool = False
    caller_id: str | None = None  # shown to professionals on legs for this organisation
    retention_days: int | None = None  # personal fields of its calls kept this long


@dataclass(frozen=True)
class LifeEventStep:
    line_id: str
    reason: str  # short, spoken to the professional


@dataclass(frozen=True)
class LifeEvent:
    """A situation that needs several organisations: a chain of warm transfers."""

    id: str
    name: str
    spoken_name: str
    digit: str  # key in the life-event menu (after 0); "" for speech only
    keywords: tuple[str, ...]
    steps: tuple[LifeEventStep, ...]


@dataclass(frozen=True)
class Directory:
    source: str
    timezone: str
    language: str
    voice: str
    holidays: str
    internal_number: str
    caller_id: str  # shown on outbound legs; the internal number unless configured
    callers: tuple[Caller, ...]
    organisations: tuple[Organisation, ...]
    life_events: tuple[LifeEvent, ...] = ()
    # Lookup tables, built once after validation.
    _by_number: dict[str, Caller] = field(default_factory=dict, repr=False, compare=False)
    _by_prefix: dict[str, Caller] = field(default_factory=dict, repr=False, compare=False)
    _prefix_lengths: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _by_code: dict[str, Caller] = field(default_factory=dict, repr=False, compare=False)
    _orgs: dict[str, Organisation] = field(default_factory=dict, repr=False, compare=False)
    _org_by_digit: dict[str, Organisation] = field(default_factory=dict, repr=False, compare=False)
    _lines: dict[str, Line] = field(default_factory=dict, repr=False, compare=False)
    _callers: dict[str, Caller] = field(default_factory=dict, repr=False, compare=False)
    _events: dict[str, LifeEvent] = field(default_factory=dict, repr=False, compare=False)
    _staff_by_number: dict[str, Organisation] = field(
        default_factory=dict, repr=False, compare=False
    )
    _staff_by_prefix: dict[str, Organisation] = field(
        default_factory=dict, repr=False, compare=False
    )
    # Filled on first use by the routing module's speech matcher.
    _speech: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def organisation(self, org_id: str | None) -> Organisation | None:
        return self._orgs.get(org_id or "")

    def organisation_by_digit(self, digit: str) -> Organisation | None:
        return self._org_by_digit.get(digit) if digit else None

    def line(self, line_id: str | None) -> Line | None:
        return self._lines.get(line_id or "")

    def caller(self, caller_id: str | None) -> Caller | None:
        return self._callers.get(caller_id or "")

    def caller_id_for(self, caller_id: str | None) -> str:
        """The number professionals see when called on behalf of this caller organisation."""
        caller = self.caller(caller_id)
        return caller.caller_id if caller is not None and caller.caller_id else self.caller_id

    def caller_by_code(self, code: str) -> Caller | None:
        return self._by_code.get(code)

    @property
    def lines(self) -> tuple[Line, ...]:
        return tuple(self._lines.values())

    def life_event(self, event_id: str | None) -> LifeEvent | None:
        return self._events.get(event_id or "")

    def life_event_by_digit(self, digit: str) -> LifeEvent | None:
        if not digit:
            return None
        return next((e for e in self.life_events if e.digit == digit), None)


# --------------------------------------------------------------------------- YAML with lines


class _Located:
    """Plain Python values from YAML nodes plus the source line of every key path."""

    def __init__(self, file: str):
        self.file = file
        self.lines: dict[str, int] = {}
        self.raw: dict[str, str] = {}  # the source text of every plain scalar
        self.problems: list[Problem] = []

    def error(self, path: str, message: str, line: int | None = None) -> None:
        if line is None:
            line = self.line_of(path)
        self.problems.append(Problem(self.file, line, path, message))

    def line_of(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", path)
        return self.lines.get("")

    def convert(self, node: yaml.Node, path: str) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self._scalar(key_node))
                sub = f"{path}.{key}" if path else key
                if key in out:
                    self.error(sub, "duplicate key", key_node.start_mark.line + 1)
                    continue
                self.lines[sub] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, sub)
                self.lines[sub] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode):
            self.raw[path] = node.value
        return self._scalar(node)

    _constructor = yaml.SafeLoader("")

    def _scalar(self, node: yaml.Node) -> Any:
        # The safe constructor resolves tags as PyYAML would; odd values (YAML 1.1's `8:30` is
        # a number) are then caught by validation instead of being silently accepted.
        return self._constructor.construct_object(node, deep=True)


# --------------------------------------------------------------------------- validation


def load(path: str | Path) -> Directory:
    """Load and validate the directory file; raise DirectoryError listing every problem."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem(file, None, "", f"cannot read file: {exc.strerror}")
        raise DirectoryError([problem]) from None
    return loads(text, file)


def loads(text: str, file: str = "<string>") -> Directory:
    loc = _Located(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        msg = getattr(exc, "problem", None) or str(exc)
        raise DirectoryError([Problem(file, line, "", f"not valid YAML: {msg}")]) from None
    if node is None:
        raise DirectoryError([Problem(file, 1, "", "the file is empty")])
    data = loc.convert(node, "")
    directory = _Validator(loc).directory(data)
    if loc.problems or directory is None:
        raise DirectoryError(loc.problems)
    return directory


class _Validator:
    TOP_KEYS = {
        "timezone",
        "language",
        "voice",
        "holidays",
        "internal_number",
        "caller_id",
        "callers",
        "organisations",
        "life_events",
    }
    CALLER_KEYS = {
        "id",
        "name",
        "spoken_name",
        "numbers",
        "code",
        "pin_hash",
        "hours",
        "sms_confirmation",
        "caller_id",
        "retention_days",
    }
    ORG_KEYS = {
        "id",
        "name",
        "spoken_name",
        "digit",
        "public_wait_minutes",
        "public_number",
        "lines",
        "staff_numbers",
    }
    EVENT_KEYS = {"id", "name", "spoken_name", "digit", "keywords", "steps"}
    STEP_KEYS = {"line", "reason"}
    LINE_KEYS = {
        "id",
        "topic",
        "spoken_topic",
        "digit",
        "keywords",
        "numbers",
        "urgent_numbers",
        "ring_seconds",
        "hours",
        "closed_on",
        "open_on_holidays",
    }

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

    # -- sections --------------------------------------------------------------

    def directory(self, data: Any) -> Directory | None:
        top = self.mapping(data, "")
        if top is None:
            return None
        self.keys(top, self.TOP_KEYS, "", {"internal_number", "callers", "organisations"})
        tz = self.text(top.get("timezone"), "timezone", "Europe/Amsterdam") or "Europe/Amsterdam"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            self.loc.error("timezone", f"'{tz}' is not an IANA time zone such as Europe/Amsterdam")
            tz = "Europe/Amsterdam"
        language = self.text(top.get("language"), "language", "nl-NL") or "nl-NL"
        voice = self.text(top.get("voice"), "voice", "Polly.Ruben") or "Polly.Ruben"
        country = self.text(top.get("holidays"), "holidays", "NL") or "NL"
        try:
            import holidays as holidays_pkg

            holidays_pkg.country_holidays(country)
        except NotImplementedError:
            self.loc.error("holidays", f"'{country}' is not a country code known for holidays")
        internal = (
            self.phone(top.get("internal_number"), "internal_number")
            if ("internal_number" in top)
            else None
        )
        caller_id = (
            self.caller_id(top["caller_id"], "caller_id")
            if top.get("caller_id") is not None
            else internal
        )

        callers = [
            c
            for i, raw in enumerate(self.seq(top.get("callers"), "callers", required=True))
            if (c := self.caller(raw, f"callers[{i}]")) is not None
        ]
        orgs = [
            o
            for i, raw in enumerate(self.seq(top.get("organisations"), "organisations", True))
            if (o := self.organisation(raw, f"organisations[{i}]")) is not None
        ]
        self.unique_callers(callers, top.get("callers") or [])
        self.unique_orgs(orgs, top.get("organisations") or [])
        self.staff_apart(callers, orgs, top.get("organisations") or [])
        # Ids as written, so that a line with an error of its own is not reported again by
        # every life event that names it.
        line_ids = {
            ln.get("id")
            for o in (top.get("organisations") or [])
            if isinstance(o, dict) and isinstance(o.get("lines"), list)
            for ln in o["lines"]
            if isinstance(ln, dict)
        }
        raw_events = self.seq(top.get("life_events"), "life_events")
        events = [
            e
            for i, raw in enumerate(raw_events)
            if (e := self.life_event(raw, f"life_events[{i}]", line_ids)) is not None
        ]
        self.unique_events(raw_events)
        if self.loc.problems or internal is None:
            return None
        return _indexed(
            Directory(
                source=self.loc.file,
                timezone=tz,
                language=language,
                voice=voice,
                holidays=country,
                internal_number=internal,
                caller_id=caller_id or internal,
                callers=tuple(callers),
                organisations=tuple(orgs),
                life_events=tuple(events),
            )
        )

    def life_event(self, raw: Any, path: str, line_ids: set[str]) -> LifeEvent | None:
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, self.EVENT_KEYS, path, {"id", "name", "steps"})
        eid = self.ident(raw.get("id"), f"{path}.id")
        name = self.text(raw.get("name"), f"{path}.name")
        spoken = self.text(raw.get("spoken_name"), f"{path}.spoken_name", name)
        digit = self.digit(raw["digit"], f"{path}.digit") if raw.get("digit") is not None else ""
        if digit == "0":
            self.loc.error(f"{path}.digit", "key 0 is the life-event menu itself; use 1 to 9")
            digit = None
        keywords = [
            k
            for i, kw in enumerate(self.seq(raw.get("keywords"), f"{path}.keywords"))
            if (k := self.text(kw, f"{path}.keywords[{i}]")) is not None
        ]
        steps: list[LifeEventStep] = []
        raw_steps = self.seq(raw.get("steps"), f"{path}.steps", required=True)
        if "steps" in raw and isinstance(raw.get("steps"), list) and not raw_steps:
            self.loc.error(f"{path}.steps", "a life event needs at least one step")
        seen: dict[str, int] = {}
        for i, item in enumerate(raw_steps):
            spath = f"{path}.steps[{i}]"
            item = self.mapping(item, spath)
            if item is None:
                continue
            self.keys(item, self.STEP_KEYS, spath, {"line", "reason"})
            line_id = self.text(item.get("line"), f"{spath}.line")
            reason = self.text(item.get("reason"), f"{spath}.reason")
            if line_id is not None and line_id not in line_ids:
                self.loc.error(f"{spath}.line", f"unknown line id '{line_id}'")
                line_id = None
            elif line_id is not None and line_id in seen:
                self.loc.error(
                    f"{spath}.line",
                    f"line '{line_id}' is already step {seen[line_id] + 1} of this life event",
                )
                line_id = None
            if line_id is not None:
                seen[line_id] = i
            if line_id is not None and reason is not None:
                steps.append(LifeEventStep(line_id, reason))
        if None in (eid, name, digit) or not steps:
            return None
        return LifeEvent(eid, name, spoken or name, digit, tuple(keywords), tuple(steps))

    def unique_events(self, raw: list) -> None:
        ids: dict[str, int] = {}
        digits: dict[str, int] = {}
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                continue
            eid, d = item.get("id"), item.get("digit")
            if isinstance(eid, str):
                if eid in ids:
                    self.loc.error(
                        f"life_events[{i}].id",
                        f"duplicate life event id '{eid}' (also life_events[{ids[eid]}])",
                    )
                ids.setdefault(eid, i)
            if d is not None:
                d = str(d)
                if d in digits:
                    self.loc.error(
                        f"life_events[{i}].digit",
                        f"menu key {d} is already used by life_events[{digits[d]}]",
                    )
                digits.setdefault(d, i)

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

    def staff_apart(self, callers: list[Caller], orgs: list[Organisation], raw: list) -> None:
        """A number (or block) is either a front desk's or a professional's, never both."""
        desk = {n: c.id for c in callers for n in c.numbers}
        desk |= {p + "*": c.id for c in callers for p in c.prefixes}
        staff: dict[str, str] = {}
        for i, o in enumerate(orgs):
            path = self._path_of(raw, "staff", o.id) if raw else f"organisations[{i}]"
            path = path.replace("staff[", "organisations[")
            for n in o.staff_numbers + tuple(p + "*" for p in o.staff_prefixes):
                if n in desk:
                    self.loc.error(
                        f"{path}.staff_numbers", f"{n} is also a number of caller '{desk[n]}'"
                    )
                elif n in staff and staff[n] != o.id:
                    self.loc.error(
                        f"{path}.staff_numbers", f"{n} is also a staff number of '{staff[n]}'"
                    )
                staff.setdefault(n, o.id)

    def caller(self, raw: Any, path: str) -> Caller | None:
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, self.CALLER_KEYS, path, {"id", "name", "numbers", "code"})
        cid = self.ident(raw.get("id"), f"{path}.id")
        name = self.text(raw.get("name"), f"{path}.name")
        spoken = self.text(raw.get("spoken_name"), f"{path}.spoken_name", name)
        code = raw.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            code = self.loc.raw.get(f"{path}.code", str(code))  # keeps a leading zero as written
        if not isinstance(code, str) or not _CODE_RE.match(code):
            self.loc.error(f"{path}.code", "expected a numeric code of 2 to 8 digits in quotes")
            code = None
        pin_hash = raw.get("pin_hash")
        if pin_hash is not None and (
            not isinstance(pin_hash, str) or not pin_hash.startswith("$argon2")
        ):
            self.loc.error(
                f"{path}.pin_hash",
                "expected an argon2 hash made by 'flask --app app lines hash-pin'",
            )
            pin_hash = None
        numbers, prefixes = self.numbers_and_blocks(raw.get("numbers"), f"{path}.numbers", True)
        hours = self.hours(raw["hours"], f"{path}.hours") if "hours" in raw else None
        sms = self.boolean(raw.get("sms_confirmation"), f"{path}.sms_confirmation", False)
        shown = (
            self.caller_id(raw["caller_id"], f"{path}.caller_id")
            if raw.get("caller_id") is not None
            else None
        )
        retention = (
            self.integer(raw["retention_days"], f"{path}.retention_days", 90, 1, 3650)
            if raw.get("retention_days") is not None
            else None
        )
        if None in (cid, name, code):
            return None
        return Caller(
            cid,
            name,
            spoken or name,
            code,
            pin_hash,
            tuple(numbers),
            tuple(prefixes),
            hours,
            sms,
            shown,
            retention,
        )

    def organisation(self, raw: Any, path: str) -> Organisation | None:
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, self.ORG_KEYS, path, {"id", "name", "lines"})
        oid = self.ident(raw.get("id"), f"{path}.id")
        name = self.text(raw.get("name"), f"{path}.name")
        spoken = self.text(raw.get("spoken_name"), f"{path}.spoken_name", name)
        # Without a digit an organisation is reached by speech only (large directories).
        digit = self.digit(raw["digit"], f"{path}.digit") if raw.get("digit") is not None else ""
        wait = self.integer(
            raw.get("public_wait_minutes"), f"{path}.public_wait_minutes", 0, 0, 24 * 60
        )
        public = (
            self.phone(raw["public_number"], f"{path}.public_number")
            if raw.get("public_number") is not None
            else None
        )
        lines = []
        raw_lines = self.seq(raw.get("lines"), f"{path}.lines", required=True)
        for i, item in enumerate(raw_lines):
            line = self.line(item, f"{path}.lines[{i}]", oid or "")
            if line is not None:
                lines.append(line)
        seen: dict[str, int] = {}
        for i, item in enumerate(raw_lines):
            d = item.get("digit") if isinstance(item, dict) else None
            d = str(d) if d is not None else None
            if d is None:
                continue
            if d in seen:
                self.loc.error(
                    f"{path}.lines[{i}].digit",
                    f"menu key {d} is already used by {path}.lines[{seen[d]}]",
                )
            else:
                seen[d] = i
        staff, staff_blocks = self.numbers_and_blocks(
            raw.get("staff_numbers"), f"{path}.staff_numbers", False
        )
        if None in (oid, name, digit):
            return None
        return Organisation(
            oid,
            name,
            spoken or name,
            digit,
            wait,
            public,
            tuple(lines),
            tuple(staff),
            tuple(staff_blocks),
        )

    def line(self, raw: Any, path: str, org_id: str) -> Line | None:
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        self.keys(raw, self.LINE_KEYS, path, {"id", "topic", "numbers", "hours"})
        lid = self.ident(raw.get("id"), f"{path}.id")
        topic = self.text(raw.get("topic"), f"{path}.topic")
        spoken = self.text(raw.get("spoken_topic"), f"{path}.spoken_topic", topic)
        digit = self.digit(raw["digit"], f"{path}.digit") if raw.get("digit") is not None else ""
        keywords = []
        for i, kw in enumerate(self.seq(raw.get("keywords"), f"{path}.keywords")):
            if (k := self.text(kw, f"{path}.keywords[{i}]")) is not None:
                keywords.append(k)
        numbers = [
            n
            for i, item in enumerate(
                self.seq(raw.get("numbers"), f"{path}.numbers", "numbers" in raw)
            )
            if (n := self.phone(item, f"{path}.numbers[{i}]")) is not None
        ]
        urgent = [
            n
            for i, item in enumerate(self.seq(raw.get("urgent_numbers"), f"{path}.urgent_numbers"))
            if (n := self.phone(item, f"{path}.urgent_numbers[{i}]")) is not None
        ]
        ring = self.integer(raw.get("ring_seconds"), f"{path}.ring_seconds", 20, 5, 120)
        hours = self.hours(raw["hours"], f"{path}.hours") if "hours" in raw else None
        closed = self.closed_on(raw.get("closed_on"), f"{path}.closed_on")
        on_holidays = self.boolean(raw.get("open_on_holidays"), f"{path}.open_on_holidays", False)
        if None in (lid, topic, digit, hours) or not numbers:
            return None
        return Line(
            lid,
            org_id,
            topic,
            spoken or topic,
            digit,
            tuple(keywords),
            tuple(numbers),
            tuple(urgent),
            ring,
            hours,
            closed,
            on_holidays,
        )

    def unique_callers(self, callers: list[Caller], raw: list) -> None:
        ids: dict[str, str] = {}
        codes: dict[str, str] = {}
        numbers: dict[str, str] = {}
        for c in callers:
            path = self._path_of(raw, "callers", c.id)
            if c.id in ids:
                self.loc.error(f"{path}.id", f"duplicate caller id '{c.id}'")
            ids.setdefault(c.id, path)
            if c.code in codes:
                self.loc.error(f"{path}.code", f"code {c.code} is already used by {codes[c.code]}")
            codes.setdefault(c.code, path)
            for n in c.numbers + tuple(p + "*" for p in c.prefixes):
                if n in numbers and numbers[n] != path:
                    self.loc.error(f"{path}.numbers", f"{n} is already listed by {numbers[n]}")
                numbers.setdefault(n, path)

    def unique_orgs(self, orgs: list[Organisation], raw: list) -> None:
        ids: dict[str, str] = {}
        digits: dict[str, str] = {}
        line_ids: dict[str, str] = {}
        for o in orgs:
            path = self._path_of(raw, "organisations", o.id)
            raw_org = raw[int(path[path.index("[") + 1 : -1])] if raw else {}
            raw_lines = raw_org.get("lines") if isinstance(raw_org, dict) else None
            if o.id in ids:
                self.loc.error(f"{path}.id", f"duplicate organisation id '{o.id}'")
            ids.setdefault(o.id, path)
            if o.digit == "0":
                self.loc.error(f"{path}.digit", "menu key 0 is reserved for life events")
            elif not o.digit:
                pass
            elif o.digit in digits:
                self.loc.error(
                    f"{path}.digit", f"menu key {o.digit} is already used by {digits[o.digit]}"
                )
            digits.setdefault(o.digit, path)
            for line in o.lines:
                lpath = self._path_of(
                    raw_lines if isinstance(raw_lines, list) else [], f"{path}.lines", line.id
                )
                if line.id in line_ids:
                    self.loc.error(
                        f"{lpath}.id", f"duplicate line id '{line.id}' (also {line_ids[line.id]})"
                    )
                line_ids.setdefault(line.id, lpath)

    def _path_of(self, raw: list, section: str, ident: str) -> str:
        """The key path of the n-th entry with this id, n counting the calls for it so far,
        so that a duplicate is reported at its own place."""
        seen = self.__dict__.setdefault("_seen", {})
        n = seen.get((section, ident), 0)
        seen[(section, ident)] = n + 1
        hits = [i for i, r in enumerate(raw) if isinstance(r, dict) and r.get("id") == ident]
        return f"{section}[{hits[min(n, len(hits) - 1)] if hits else 0}]"


def _indexed(d: Directory) -> Directory:
    """Fill the lookup tables of a validated directory."""
    d._by_number.update({n: c for c in d.callers for n in c.numbers})
    d._by_prefix.update({p: c for c in d.callers for p in c.prefixes})
    object.__setattr__(
        d, "_prefix_lengths", tuple(sorted({len(p) for p in d._by_prefix}, reverse=True))
    )
    d._by_code.update({c.code: c for c in d.callers})
    d._callers.update({c.id: c for c in d.callers})
    d._orgs.update({o.id: o for o in d.organisations})
    d._org_by_digit.update({o.digit: o for o in d.organisations if o.digit})
    d._lines.update({ln.id: ln for o in d.organisations for ln in o.lines})
    d._events.update({e.id: e for e in d.life_events})
    d._staff_by_number.update({n: o for o in d.organisations for n in o.staff_numbers})
    d._staff_by_prefix.update({p: o for o in d.organisations for p in o.staff_prefixes})
    return d


def summary(d: Directory) -> str:
    """A short human summary for `lines check`."""
    n_lines = sum(len(o.lines) for o in d.organisations)
    n_numbers = sum(len(ln.numbers) for o in d.organisations for ln in o.lines)
    return (
        f"{d.source}: OK\n"
        f"  internal number {d.internal_number}, time zone {d.timezone}, holidays {d.holidays}\n"
        f"  {len(d.callers)} caller organisations, {len(d.organisations)} organisations, "
        f"{n_lines} lines, {n_numbers} professional numbers, {len(d.life_events)} life events"
    )


def weekday_name_nl(index: int) -> str:
    return DAY_NAMES_NL[index]


__all__ = [
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
]
