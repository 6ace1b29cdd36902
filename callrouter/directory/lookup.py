"""The validated directory as one frozen value, with its lookup tables and queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from callrouter.directory.model import Caller, LifeEvent, Line, Organisation
from callrouter.ldv.register import BUILTIN, Register


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
    # The register of processing activities (AVG art. 30) that the LDV records refer to.
    register: Register = BUILTIN
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
        f"{n_lines} lines, {n_numbers} professional numbers, {len(d.life_events)} life events\n"
        + (
            "  processing register: built in (urn:callrouter:...); add processing_activities "
            "to name your register's addresses"
            if d.register.builtin
            else f"  processing register: {len(d.register.activities)} activities"
        )
    )
