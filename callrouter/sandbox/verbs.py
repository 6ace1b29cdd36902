"""Reading the service's TwiML in the sandbox: the document, and what a Gather hands on."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def parse(status: int, body: str) -> ET.Element | None:
    """The document's root element; None for an HTTP error or a body that is not XML."""
    try:
        return ET.fromstring(body) if status == 200 else None
    except ET.ParseError:
        return None


def is_gather(verb: ET.Element | tuple) -> bool:
    """Whether a call's next verb is a Gather (a join queued as a tuple is no verb)."""
    return not isinstance(verb, tuple) and verb.tag == "Gather"


def gathered(given: str) -> dict:
    """The parameters a Gather's action receives for a phone's input: "say:..." is speech,
    anything else keys."""
    if given.startswith("say:"):
        return {"SpeechResult": given[4:], "Confidence": "0.9"}
    return {"Digits": given}
