"""Validation of the directory's register of processing activities (`processing_activities`):
each activity with an absolute URI into the organisation's register, and every kind of
processing that callrouter logs assigned to exactly one of them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from callrouter.directory.readers import _Readers
from callrouter.ldv.register import BUILTIN, KINDS, ProcessingActivity, Register

# RFC 3986's scheme; an absolute URI starts with one (https://..., urn:...).
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def absolute_uri_problem(value: str) -> str | None:
    """Why `value` is not an absolute URI, or None when it is one."""
    if any(ch.isspace() for ch in value) or any(ord(ch) < 33 for ch in value):
        return "a URI has no spaces or control characters"
    parts = urlsplit(value)
    if not parts.scheme or not _SCHEME_RE.match(parts.scheme) or ":" not in value:
        return "not an absolute URI (such as https://register.example.nl/activiteiten/1)"
    if parts.scheme.lower() in ("http", "https") and not parts.netloc:
        return f"a {parts.scheme} URI needs a host"
    if not (parts.netloc or parts.path):
        return "the URI has nothing after its scheme"
    return None


class _RegisterReader(_Readers):
    ACTIVITY_KEYS = {"id", "name", "purpose", "legal_basis", "retention_days", "uri", "processings"}

    def register(self, raw: Any, path: str = "processing_activities") -> Register:
        """The register as written, or the built-in one when the directory has none. (A
        register with problems gives the built-in one too: the file is refused anyway.)"""
        if raw is None:
            return BUILTIN
        activities: list[ProcessingActivity] = []
        owner: dict[str, str] = {}  # kind -> path of the activity it is assigned to
        ids: dict[str, str] = {}
        uris: dict[str, str] = {}
        items = self.seq(raw, path, required=True)
        if isinstance(raw, list) and not items:
            self.loc.error(path, "the register needs at least one activity")
        for i, item in enumerate(items):
            a = self.activity(item, f"{path}[{i}]", owner)
            if a is None:
                continue
            apath = f"{path}[{i}]"
            if a.id in ids:
                self.loc.error(f"{apath}.id", f"duplicate activity id '{a.id}' (also {ids[a.id]})")
            ids.setdefault(a.id, apath)
            if a.uri in uris:
                self.loc.error(f"{apath}.uri", f"URI is already that of {uris[a.uri]}")
            uris.setdefault(a.uri, apath)
            activities.append(a)
        missing = [k for k in KINDS if k not in owner]
        if missing and isinstance(raw, list) and items:
            self.loc.error(
                path,
                "no activity lists the processing(s) "
                + ", ".join(missing)
                + " (every kind of processing belongs to one activity)",
            )
        if self.loc.problems or not activities:
            return BUILTIN
        return Register(tuple(activities))

    def activity(self, raw: Any, path: str, owner: dict[str, str]) -> ProcessingActivity | None:
        raw = self.mapping(raw, path)
        if raw is None:
            return None
        required = {"id", "name", "purpose", "legal_basis", "retention_days", "uri", "processings"}
        self.keys(raw, self.ACTIVITY_KEYS, path, required)
        ident = self.ident(raw.get("id"), f"{path}.id") if "id" in raw else None
        name = self.text(raw.get("name"), f"{path}.name")
        purpose = self.text(raw.get("purpose"), f"{path}.purpose")
        basis = self.text(raw.get("legal_basis"), f"{path}.legal_basis")
        days = self.integer(raw.get("retention_days"), f"{path}.retention_days", 0, 1, 36500)
        uri = self.text(raw.get("uri"), f"{path}.uri")
        if uri is not None and (why := absolute_uri_problem(uri)) is not None:
            self.loc.error(f"{path}.uri", f"'{uri[:80]}': {why}")
            uri = None
        kinds: list[str] = []
        for j, k in enumerate(self.seq(raw.get("processings"), f"{path}.processings")):
            kpath = f"{path}.processings[{j}]"
            if not isinstance(k, str) or k not in KINDS:
                self.loc.error(kpath, f"unknown processing '{k}' (known: {', '.join(KINDS)})")
            elif k in owner:
                self.loc.error(kpath, f"'{k}' is already listed by {owner[k]}")
            else:
                owner[k] = path
                kinds.append(k)
        if None in (ident, name, purpose, basis, uri) or not days:
            return None
        assert ident and name and purpose and basis and uri
        return ProcessingActivity(ident, name, purpose, basis, days, uri, tuple(kinds))
