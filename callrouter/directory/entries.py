"""Validation of one entry of each section: a caller organisation, an organisation, a line,
a life event."""

from __future__ import annotations

import re
from typing import Any

from callrouter.directory.model import Caller, LifeEvent, LifeEventStep, Line, Organisation
from callrouter.directory.readers import _Readers

_CODE_RE = re.compile(r"^[0-9]{2,8}$")


class _EntryReader(_Readers):
    """Reads one entry of a section into its frozen value, or None when it has a problem."""

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
