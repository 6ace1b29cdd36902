"""Routing decisions: who is calling, and which line the caller chose.

Pure functions over the directory; no IO.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import phonenumbers
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callrouter.directory import Caller, Directory, LifeEvent, Line, Organisation

_hasher = PasswordHasher()


def normalise_number(raw: str | None, region: str = "NL") -> str | None:
    """E.164 form of a number as Twilio or a person gives it; None when it is no valid number."""
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def is_e164(number: str | None) -> bool:
    """Written in E.164 (`+` and 7 to 15 digits); says nothing about the number's validity."""
    return bool(number and _E164.match(number))


def identify(directory: Directory, number: str | None) -> Caller | None:
    """The caller organisation of a number: an exact number first, then the longest block.

    Twilio sends `From` in E.164 already; other notations are normalised first.
    """
    e164 = number if number and _E164.match(number) else normalise_number(number)
    if e164 is None:
        return None
    caller = directory._by_number.get(e164)
    if caller is not None:
        return caller
    for length in directory._prefix_lengths:
        if length <= len(e164):
            caller = directory._by_prefix.get(e164[:length])
            if caller is not None:
                return caller
    return None


def _best(table: dict, prefixes: dict, lengths, e164: str):
    """(match length, value) of the exact number or the longest block; (0, None) for none."""
    hit = table.get(e164)
    if hit is not None:
        return len(e164) + 1, hit
    for length in lengths:
        if length <= len(e164) and (hit := prefixes.get(e164[:length])) is not None:
            return length, hit
    return 0, None


def identify_staff(directory: Directory, number: str | None) -> Organisation | None:
    """The organisation whose professional calls from this number (its `staff_numbers`),
    unless a front desk's number or block matches it more precisely."""
    if not directory._staff_by_number and not directory._staff_by_prefix:
        return None
    e164 = number if number and _E164.match(number) else normalise_number(number)
    if e164 is None:
        return None
    lengths = sorted({len(p) for p in directory._staff_by_prefix}, reverse=True)
    staff_len, org = _best(directory._staff_by_number, directory._staff_by_prefix, lengths, e164)
    if org is None:
        return None
    desk_len, _ = _best(directory._by_number, directory._by_prefix, directory._prefix_lengths, e164)
    return org if staff_len > desk_len else None


def check_pin(directory: Directory, code: str, pin: str) -> Caller | None:
    """The caller organisation whose code and PIN match; None otherwise (same cost either way)."""
    caller = directory.caller_by_code(code)
    pin_hash = caller.pin_hash if caller is not None else None
    if pin_hash is None:
        # Spend the same effort so that timing does not reveal which codes exist.
        pin_hash = _DUMMY_HASH
        caller = None
    try:
        _hasher.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return None
    return caller


_DUMMY_HASH = _hasher.hash("not-a-pin")


def hash_pin(pin: str) -> str:
    return _hasher.hash(pin)


# --------------------------------------------------------------------------- menu


@dataclass(frozen=True)
class Choice:
    """What the caller selected: an organisation, and a line when that is known already."""

    organisation: Organisation
    line: Line | None = None
    # The directory term that speech matched (a keyword, a topic); not part of the choice.
    term: str | None = field(default=None, compare=False)


def resolve_digits(
    directory: Directory, digits: str, organisation: Organisation | None = None
) -> Choice | None:
    """Keys pressed in the organisation menu (one key, or a two-key line code) or topic menu."""
    digits = (digits or "").strip()
    if not digits.isdigit():
        return None
    if organisation is not None:
        if len(digits) != 1:
            return None
        line = organisation.line_by_digit(digits)
        return Choice(organisation, line) if line else None
    org = directory.organisation_by_digit(digits[0])
    if org is None or len(digits) > 2:
        return None
    if len(digits) == 2:
        line = org.line_by_digit(digits[1])
        return Choice(org, line) if line else None
    # One key: the organisation; with a single line there is nothing left to choose.
    return Choice(org, org.lines[0] if len(org.lines) == 1 else None)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def _squeeze(text: str) -> str:
    """Join single letters, so that 'de S V B', 'S.V.B.' and 'svb' compare equal."""
    words = _fold(text).split()
    out: list[str] = []
    run = ""
    for w in words:
        if len(w) == 1 and w.isalpha():
            run += w
            continue
        if run:
            out.append(run)
            run = ""
        out.append(w)
    if run:
        out.append(run)
    return " " + " ".join(out) + " "


_ARTICLES = {"de", "het", "een"}


def _org_terms(org: Organisation) -> set[str]:
    terms = {org.id.replace("-", " "), org.name, org.spoken_name}
    terms |= {part for part in re.split(r"[/]", org.name) if part.strip()}
    return {t for t in (_squeeze(x).strip() for x in terms) if t and t not in _ARTICLES}


def _line_terms(line: Line) -> set[str]:
    terms = {line.topic, line.spoken_topic, *line.keywords}
    return {t for t in (_squeeze(x).strip() for x in terms) if t and t not in _ARTICLES}


@dataclass(frozen=True)
class _SpeechIndex:
    orgs: dict[str, tuple[str, ...]]  # term -> organisation ids
    lines: dict[str, tuple[Line, ...]]  # term -> lines
    max_words: int


def _speech_index(directory: Directory) -> _SpeechIndex:
    """Terms of every name, topic and keyword, built once per directory."""
    cached = directory._speech.get("index")
    if cached is not None:
        return cached
    orgs: dict[str, list[str]] = {}
    lines: dict[str, list[Line]] = {}
    for org in directory.organisations:
        for term in _org_terms(org):
            orgs.setdefault(term, []).append(org.id)
        for line in org.lines:
            for term in _line_terms(line):
                lines.setdefault(term, []).append(line)
    words = max((len(t.split()) for t in [*orgs, *lines]), default=1)
    index = _SpeechIndex(
        {k: tuple(v) for k, v in orgs.items()}, {k: tuple(v) for k, v in lines.items()}, words
    )
    directory._speech["index"] = index
    return index


def _phrases(said: str, max_words: int) -> set[str]:
    words = said.split()
    return {
        " ".join(words[i : i + n])
        for n in range(1, max_words + 1)
        for i in range(len(words) - n + 1)
    }


def resolve_speech(
    directory: Directory, speech: str, organisation: Organisation | None = None
) -> Choice | None:
    """Match what the caller said against organisation names, topics and keywords.

    A phrase that names a line's keyword selects that line; a phrase that names only an
    organisation selects it. When words point to lines of several organisations and no single
    organisation is named, the answer is unclear (None): better to ask again than to guess.
    The cost depends on the length of the phrase, not on the size of the directory.
    """
    said = _squeeze(speech or "").strip()
    if not said:
        return None
    index = _speech_index(directory)
    phrases = _phrases(said, index.max_words)
    named_ids = {oid for p in phrases for oid in index.orgs.get(p, ())}
    if organisation is not None:
        named_ids = {organisation.id}
    best: dict[str, tuple[int, Line, str]] = {}
    for p in phrases:
        for line in index.lines.get(p, ()):
            if len(p) > best.get(line.id, (0, None, ""))[0]:
                best[line.id] = (len(p), line, p)
    scored = [
        (n, line, p)
        for n, line, p in best.values()
        if not named_ids or line.organisation_id in named_ids
    ]
    if scored:
        top_score = max(n for n, _, _ in scored)
        top = [(line, p) for n, line, p in scored if n == top_score]
        if len(top) == 1:
            line, term = top[0]
            return Choice(directory.organisation(line.organisation_id), line, term)
        if len({line.organisation_id for line, _ in top}) == 1:
            return Choice(directory.organisation(top[0][0].organisation_id), None, top[0][1])
        return None
    if organisation is None and len(named_ids) == 1:
        org = directory.organisation(next(iter(named_ids)))
        term = next((p for p in phrases if org.id in index.orgs.get(p, ())), None)
        return Choice(org, org.lines[0] if len(org.lines) == 1 else None, term)
    return None


def _event_index(directory: Directory) -> dict[str, tuple[LifeEvent, ...]]:
    cached = directory._speech.get("events")
    if cached is not None:
        return cached
    index: dict[str, list[LifeEvent]] = {}
    for event in directory.life_events:
        terms = {event.name, event.spoken_name, *event.keywords}
        for term in {t for t in (_squeeze(x).strip() for x in terms) if t}:
            if term not in _ARTICLES:
                index.setdefault(term, []).append(event)
    frozen = {k: tuple(v) for k, v in index.items()}
    directory._speech["events"] = frozen
    return frozen


def resolve_event(directory: Directory, speech: str) -> LifeEvent | None:
    """The life event whose name or keyword the caller said; None when none or several."""
    said = _squeeze(speech or "").strip()
    if not said or not directory.life_events:
        return None
    index = _event_index(directory)
    words = max((len(t.split()) for t in index), default=1)
    found = {e.id: e for p in _phrases(said, words) for e in index.get(p, ())}
    return next(iter(found.values())) if len(found) == 1 else None


def speech_hints(directory: Directory, organisation: Organisation | None = None) -> str:
    """Comma-separated hints for Twilio's speech recognition (names, topics, keywords)."""
    key = ("hints", organisation.id if organisation else None)
    cached = directory._speech.get(key)
    if cached is not None:
        return cached
    hints: list[str] = []
    for org in [organisation] if organisation else directory.organisations:
        hints += [org.name, org.spoken_name]
        for line in org.lines:
            hints += [line.topic, *line.keywords]
    if organisation is None:
        for event in directory.life_events:
            hints += [event.name, *event.keywords]
    seen: dict[str, None] = {}
    for h in hints:
        seen.setdefault(h.replace(",", " ").strip(), None)
    # Twilio limits hints to 500 entries of at most 100 characters.
    text = ", ".join(h[:100] for h in list(seen)[:500])
    directory._speech[key] = text
    return text
