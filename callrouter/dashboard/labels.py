"""The Dutch labels supervisors read for stored values: outcomes, states, sources, results.

Unknown values are shown as stored.
"""

from __future__ import annotations

# Outcomes as supervisors read them (Dutch); unknown values are shown as stored.
OUTCOMES = {
    "connected": "verbonden",
    "declined": "geweigerd",
    "no-answer": "niet opgenomen",
    "busy": "in gesprek",
    "failed": "mislukt",
    "abandoned": "opgehangen",
    "cancelled": "afgebroken",
    "closed": "lijn gesloten",
    "callback-requested": "terugbelverzoek",
    "locked": "geblokkeerd (pincode)",
    "menu-failed": "geen keuze gemaakt",
    "reconstructed": "achteraf gereconstrueerd",
}
# Twilio's call and leg states and our leg outcomes, as supervisors read them.
STATUSES = {
    "queued": "in de wachtrij",
    "initiated": "gestart",
    "ringing": "gaat over",
    "in-progress": "in gesprek",
    "answered": "opgenomen",
    "completed": "beëindigd",
    "busy": "in gesprek (bezet)",
    "no-answer": "niet opgenomen",
    "failed": "mislukt",
    "canceled": "afgebroken",
    "cancelled": "afgebroken",
    "accepted": "aangenomen",
    "declined": "geweigerd",
    "conference-start": "conferentie gestart",
    "conference-end": "conferentie beëindigd",
    "participant-join": "deelnemer erbij",
    "participant-leave": "deelnemer weg",
    "participant-hold": "deelnemer in de wacht",
    "participant-unhold": "deelnemer uit de wacht",
}
EVENT_SOURCES = {
    "call": "gesprek",
    "leg": "uitgaand gesprek",
    "conference": "conferentie",
    "voice": "gesprek",
    "callback": "terugbelgesprek",
}


def status_nl(value: str | None) -> str:
    return STATUSES.get(value or "", value or "-")


RESULTS = {
    "resolved": "opgelost",
    "partial": "deels, vervolg nodig",
    "unresolved": "niet opgelost",
    "wrong-line": "verkeerde lijn",
    "unknown": "onbekend",
}
CALLBACK_STATES = {
    "pending": "gepland",
    "dialling": "professional wordt gebeld",
    "connecting": "medewerker wordt gebeld",
    "connected": "verbonden",
    "done": "afgerond",
    "failed": "mislukt",
    "cancelled": "geannuleerd",
}


CASE_STEP_STATES = {
    "pending": "nog te doen",
    "ringing": "gaat over",
    "connected": "in gesprek",
    "done": "afgerond",
    "unanswered": "niet bereikt (terugbelverzoek)",
    "closed": "gesloten (terugbelverzoek)",
    "skipped": "overgeslagen",
    "stopped": "gestopt",
}
CONSENT_CHOICES = {
    "none": "alleen het onderwerp",
    "case": "de zaak mag besproken worden",
    "contact": "de zaak bespreken en zelf contact opnemen met de inwoner",
}
