"""The subject's own view for administrators (AVG art. 15 and 17): everything held about one
phone number, and its erasure. The number travels only in a POST body, never in a URL (which
access logs and browser history keep); the page audits who asked, the LDV records whose."""

from __future__ import annotations

from flask import abort, render_template, request

from callrouter import clock, services
from callrouter.dashboard.blueprint import bp, current_principal, record
from callrouter.flows import routing
from callrouter.ldv import subject as subjects

KINDS_NL = {
    "call": "Gesprek",
    "leg": "Gebeld nummer",
    "callback": "Terugbelverzoek",
    "case": "Zaak",
    "consent": "Toestemming",
    "ldv": "Logboek dataverwerkingen",
}


@bp.route("/privacy/subject", methods=["GET", "POST"])
def privacy_subject():
    if not current_principal().is_admin:
        record("view-subject", "denied")
        abort(403)
    if request.method == "GET":
        return render_template("dashboard/subject.html", held=None, kinds=KINDS_NL)
    svc = services.current()
    e164 = routing.normalise_number(request.form.get("number", "")[:32])
    if e164 is None:
        return (
            render_template(
                "dashboard/subject.html",
                held=None,
                kinds=KINDS_NL,
                error="Dit is geen telefoonnummer. Voer het in als 0612345678 of +31612345678.",
            ),
            400,
        )
    pseudonym = svc.pseudonyms.pseudonym(e164)
    erase = request.form.get("erase") == "1"
    at = clock.now()
    days = svc.settings.retention_days
    with svc.sessions() as s:  # the read, outside any write transaction
        held = subjects.find(s, pseudonym, svc.directory, days, at)
    with svc.sessions.begin() as s:
        subjects.viewed(s, pseudonym, held, svc.directory.register, at)
        erased = subjects.erase(s, pseudonym, held, svc.directory.register, at) if erase else None
    record("erase-subject" if erase else "view-subject", detail={"rows": len(held)})
    if erased is not None:
        with svc.sessions() as s:
            held = subjects.find(s, pseudonym, svc.directory, days, at)
    return render_template(
        "dashboard/subject.html",
        held=held,
        kinds=KINDS_NL,
        number=e164,
        erased=erased,
    )
