"""CSV cells that a spreadsheet cannot run: the OWASP advice against formula injection."""

from __future__ import annotations

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def safe_cell(value) -> str:
    """The value as text; text a spreadsheet would read as a formula gets a leading quote."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_TRIGGERS):
        return "'" + text
    return text
