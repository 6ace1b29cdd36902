"""Suggestions of the learning network as edits of the directory's text, and a unified diff.

Pure: text in, text out. Edits keep the file as the administrators wrote it (comments, order,
quoting) and touch only the lines of the keys they change; the caller checks the result with
the directory's own validation before showing it. Nothing is ever applied automatically.
"""

from __future__ import annotations

import difflib
import re

import yaml

from callrouter.directory import Directory, Span
from callrouter.flows.network import KeywordMove, NewLifeEvent, SlotClosed

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _map_get(node, key):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
    return None, None


def _line_node(root, line_id: str):
    _, orgs = _map_get(root, "organisations")
    for org in getattr(orgs, "value", []):
        _, lines = _map_get(org, "lines")
        for line in getattr(lines, "value", []):
            _, ident = _map_get(line, "id")
            if isinstance(ident, yaml.ScalarNode) and ident.value == line_id:
                return line
    return None


class _Edits:
    """Line edits collected first and applied bottom-up, so that line numbers stay valid."""

    def __init__(self, text: str):
        self.lines = text.splitlines(keepends=True)
        self.edits: list[tuple[int, int, list[str]]] = []  # (start, end exclusive, new)

    def replace(self, start: int, end: int, new: list[str]) -> None:
        self.edits.append((start, end, new))

    def result(self) -> str:
        lines = list(self.lines)
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            lines[start:end] = new
        return "".join(lines)


def _end_line(node) -> int:
    """The first line after a node (0-based, exclusive). A block collection's own end mark
    lies at the next token (past blank lines and comments), so its last item decides."""
    while (
        isinstance(node, (yaml.MappingNode, yaml.SequenceNode))
        and not node.flow_style
        and node.value
    ):
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    end = node.end_mark
    return end.line + (1 if end.column > 0 else 0)


def _flow_list(indent: str, key: str, items: list[str]) -> str:
    return f"{indent}{key}: [{', '.join(items)}]\n"


def _keyword_edit(edits: _Edits, root, line_id: str, term: str, add: bool) -> bool:
    line = _line_node(root, line_id)
    if line is None:
        return False
    key, value = _map_get(line, "keywords")
    if key is None:
        if not add:
            return False
        topic_key, topic = _map_get(line, "topic")
        if topic_key is None:
            return False
        at = _end_line(topic)
        edits.replace(at, at, [_flow_list(" " * topic_key.start_mark.column, "keywords", [term])])
        return True
    items = [item.value for item in value.value if isinstance(item, yaml.ScalarNode)]
    present = [i for i, item in enumerate(items) if item.lower() == term.lower()]
    if add and present or not add and not present:
        return False
    indent = " " * key.start_mark.column
    if value.flow_style and key.start_mark.line == value.end_mark.line:
        new = items + [term] if add else [it for i, it in enumerate(items) if i not in present]
        row = key.start_mark.line
        edits.replace(row, row + 1, [_flow_list(indent, "keywords", new)] if new else [])
        return True
    if add:
        last = value.value[-1]
        edits.replace(
            _end_line(last), _end_line(last), [" " * (last.start_mark.column - 2) + f"- {term}\n"]
        )
    else:
        for i in present:
            item = value.value[i]
            edits.replace(item.start_mark.line, _end_line(item), [])
    return True


def _spans_text(spans: tuple[Span, ...]) -> str:
    def hhmm(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return ",".join(f"{hhmm(s.start)}-{hhmm(s.end)}" for s in spans)


def _without_hour(spans: tuple[Span, ...], hour: int) -> tuple[Span, ...]:
    cut_start, cut_end = hour * 60, hour * 60 + 60
    out: list[Span] = []
    for s in spans:
        if s.end <= cut_start or s.start >= cut_end:
            out.append(s)
            continue
        if s.start < cut_start:
            out.append(Span(s.start, cut_start))
        if s.end > cut_end:
            out.append(Span(cut_end, s.end))
    return tuple(out)


def _hours_lines(indent: str, days: list[tuple[Span, ...]]) -> list[str]:
    """Weekly hours as the directory writes them: runs of days with the same spans."""
    out = [f"{indent}hours:\n"]
    i = 0
    while i < 7:
        j = i
        while j + 1 < 7 and days[j + 1] == days[i]:
            j += 1
        if days[i]:
            name = DAY_KEYS[i] if i == j else f"{DAY_KEYS[i]}-{DAY_KEYS[j]}"
            out.append(f'{indent}  {name}: "{_spans_text(days[i])}"\n')
        i = j + 1
    return out


def _slot_edit(edits: _Edits, root, directory: Directory, s: SlotClosed) -> bool:
    line = _line_node(root, s.line_id)
    current = directory.line(s.line_id)
    if line is None or current is None:
        return False
    key, value = _map_get(line, "hours")
    if key is None:
        return False
    days = [tuple(d) for d in current.hours.days]
    for weekday in s.weekdays:
        days[weekday] = _without_hour(days[weekday], s.hour)
    if not any(days):
        return False
    edits.replace(
        key.start_mark.line, _end_line(value), _hours_lines(" " * key.start_mark.column, days)
    )
    return True


def _event_lines(directory: Directory, e: NewLifeEvent, number: int) -> list[str]:
    names = []
    for line_id in e.lines:
        line = directory.line(line_id)
        org = directory.organisation(line.organisation_id) if line else None
        names.append(org.name if org else line_id)
    title = (", ".join(names[:-1]) + " en " + names[-1]) if len(names) > 1 else names[0]
    out = [
        f"  - id: netwerk-{number}\n",
        f'    name: "Samen: {title}"\n',
        f"    # Found by the network report: together in {e.cases} cases.\n",
        "    steps:\n",
    ]
    for line_id in e.lines:
        line = directory.line(line_id)
        out.append(f"      - line: {line_id}\n")
        out.append(f'        reason: "{line.topic if line else line_id}"\n')
    return out


def apply(text: str, directory: Directory, suggestions: list) -> tuple[str, list]:
    """The directory text with every suggestion that can be written; (text, applied)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    edits = _Edits(text)
    applied: list = []
    events: list[str] = []
    for s in suggestions:
        if isinstance(s, KeywordMove):
            if _keyword_edit(edits, root, s.to_line, s.term, add=True):
                _keyword_edit(edits, root, s.from_line, s.term, add=False)
                applied.append(s)
        elif isinstance(s, SlotClosed):
            if _slot_edit(edits, root, directory, s):
                applied.append(s)
        elif isinstance(s, NewLifeEvent):
            events += _event_lines(directory, s, len(directory.life_events) + len(events) + 1)
            applied.append(s)
    if events:
        key, value = _map_get(root, "life_events")
        if key is None:
            end = len(edits.lines)
            tail = "" if not edits.lines or edits.lines[-1].endswith("\n") else "\n"
            edits.replace(end, end, [tail + "\nlife_events:\n", *events])
        else:
            at = _end_line(value)
            edits.replace(at, at, events)
    return edits.result(), applied


def unified_diff(old: str, new: str, path: str) -> str:
    """A diff that `git apply` takes, for `path` relative to the repository's root."""
    path = re.sub(r"^\./", "", path)
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )
