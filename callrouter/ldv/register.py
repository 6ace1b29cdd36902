"""The register of processing activities (AVG art. 30) as the directory holds it: which
activity each kind of processing that callrouter logs belongs to. Pure values, no IO."""

from __future__ import annotations

from dataclasses import dataclass

# Every kind of processing that gets a record in the Logboek Dataverwerkingen, with what it
# is (for `lines check`, the README and the subject view).
KINDS: dict[str, str] = {
    "call-received": "a worker's call to the internal number is received",
    "caller-identified": "the caller is identified as a front desk (by number or PIN)",
    "case-opened": "a case is opened for the citizen's question",
    "consent-recorded": "the citizen's consent for one organisation is recorded",
    "consent-withdrawn": "a consent is withdrawn",
    "context-shared": "the case's context is told to a professional (the whisper)",
    "citizen-dialled": "the citizen's number is dialled, from memory",
    "callback-stored": "a callback request is stored",
    "callback-run": "a callback request is carried out (the professional is rung)",
    "retention-purge": "personal fields past their period are removed",
    "call-viewed": "a supervisor opens a call's detail page",
    "case-viewed": "a supervisor opens a case's page",
    "csv-exported": "a supervisor exports the call log as CSV",
    "subject-viewed": "everything held about one number is listed (AVG art. 15)",
    "subject-erased": "what may be removed about one number is erased (AVG art. 17)",
}


@dataclass(frozen=True)
class ProcessingActivity:
    id: str
    name: str
    purpose: str
    legal_basis: str
    retention_days: int  # how long the records of its processings are kept
    uri: str  # absolute: where the organisation's register describes it
    processings: tuple[str, ...]


@dataclass(frozen=True)
class Register:
    activities: tuple[ProcessingActivity, ...]
    builtin: bool = False  # the directory has no processing_activities block

    def for_kind(self, kind: str) -> ProcessingActivity:
        for activity in self.activities:
            if kind in activity.processings:
                return activity
        raise KeyError(kind)  # a validated register covers every kind

    def by_uri(self, uri: str) -> ProcessingActivity | None:
        return next((a for a in self.activities if a.uri == uri), None)


def _builtin() -> Register:
    """The register a directory without a processing_activities block gets: callrouter's
    own activities under URNs, until the organisation names its register's addresses."""

    def activity(ident, name, purpose, basis, days, kinds):
        uri = f"urn:callrouter:verwerkingsactiviteit:{ident}"
        return ProcessingActivity(ident, name, purpose, basis, days, uri, kinds)

    return Register(
        (
            activity(
                "doorverbinden",
                "Warm doorverbinden van een overheidsdienstverlener",
                "De vraag van een inwoner bij de juiste professional krijgen",
                "AVG art. 6 lid 1 sub e",
                365,
                (
                    "call-received",
                    "caller-identified",
                    "case-opened",
                    "context-shared",
                    "citizen-dialled",
                ),
            ),
            activity(
                "toestemming",
                "Toestemming van de inwoner per organisatie",
                "Alleen delen wat de inwoner toestaat",
                "AVG art. 6 lid 1 sub a",
                365,
                ("consent-recorded", "consent-withdrawn"),
            ),
            activity(
                "terugbellen",
                "Terugbellen van een overheidsdienstverlener",
                "Een gesloten of onbeantwoorde lijn later alsnog verbinden",
                "AVG art. 6 lid 1 sub e",
                365,
                ("callback-stored", "callback-run"),
            ),
            activity(
                "toezicht",
                "Toezicht op doorverbindingen en verantwoording",
                "Kwaliteit bewaken, verantwoording afleggen en rechten van betrokkenen uitvoeren",
                "AVG art. 5 lid 2 en art. 6 lid 1 sub c",
                730,
                (
                    "retention-purge",
                    "call-viewed",
                    "case-viewed",
                    "csv-exported",
                    "subject-viewed",
                    "subject-erased",
                ),
            ),
        ),
        builtin=True,
    )


BUILTIN = _builtin()
