"""Loading the directory file: the whole file validated at once, with the checks that span
entries (unique ids, menu keys and numbers), so that every problem is reported together."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from callrouter.directory.activities import _RegisterReader
from callrouter.directory.entries import _EntryReader
from callrouter.directory.located import _Located
from callrouter.directory.lookup import Directory, _indexed
from callrouter.directory.model import Caller, DirectoryError, Organisation, Problem


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


class _Validator(_EntryReader, _RegisterReader):
    """The whole file: the top-level keys, every section, and the checks across entries."""

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
        "processing_activities",
    }

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
        register = self.register(top.get("processing_activities"))
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
                register=register,
            )
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

    def _path_of(self, raw: list, section: str, ident: str) -> str:
        """The key path of the n-th entry with this id, n counting the calls for it so far,
        so that a duplicate is reported at its own place."""
        seen = self.__dict__.setdefault("_seen", {})
        n = seen.get((section, ident), 0)
        seen[(section, ident)] = n + 1
        hits = [i for i, r in enumerate(raw) if isinstance(r, dict) and r.get("id") == ident]
        return f"{section}[{hits[min(n, len(hits) - 1)] if hits else 0}]"
