"""Operator commands of the Logboek Dataverwerkingen: `flask ldv trace REFERENCE`."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

ldv_cli = AppGroup("ldv", help="The Logboek Dataverwerkingen: traces, export.")


@ldv_cli.command("trace")
@click.argument("reference")
def trace(reference: str) -> None:
    """Print the chain of a case: every record of its calls and of the case, per trace."""
    from callrouter import services
    from callrouter.ldv import chain

    svc = services.current()
    with svc.sessions() as s:
        found = chain.cases_by_reference(s, reference)
        if not found:
            click.echo(f"error: no case with reference {reference!r}", err=True)
            sys.exit(1)
        for case in found:
            for line in chain.render(case, chain.case_records(s, case), svc.directory.tz):
                click.echo(line)


privacy_cli = AppGroup("privacy", help="The subject's own view and erasure (AVG art. 15, 17).")


@privacy_cli.command("subject")
@click.option(
    "--number",
    prompt="Telefoonnummer",
    help="the subject's number (asked when not given: it stays out of the shell's history)",
)
@click.option("--erase", is_flag=True, help="remove what the retention rules allow to remove")
def subject(number: str, erase: bool) -> None:
    """List every row held about one number, with how long it is kept; `--erase` removes
    what may be removed now and records that it did."""
    from callrouter import clock, services
    from callrouter.flows import routing
    from callrouter.ldv import subject as subjects

    svc = services.current()
    e164 = routing.normalise_number(number)
    if e164 is None:
        click.echo("error: not a phone number (such as +31612345678 or 0612345678)", err=True)
        sys.exit(1)
    pseudonym = svc.pseudonyms.pseudonym(e164)
    assert pseudonym is not None
    tz = svc.directory.tz
    at = clock.now()
    with svc.sessions() as s:  # the read, outside any write transaction
        held = subjects.find(s, pseudonym, svc.directory, svc.settings.retention_days, at)
    with svc.sessions.begin() as s:
        subjects.viewed(s, pseudonym, held, svc.directory.register, at)
        for h in held:
            until = h.kept_until.astimezone(tz).strftime("%Y-%m-%d") if h.kept_until else "-"
            state = "erasable" if h.erasable else f"kept: {h.why_kept}"
            click.echo(
                f"{h.at.astimezone(tz):%Y-%m-%d %H:%M} {h.kind:8} {h.id:32} "
                f"kept until {until}  {h.what}  ({state})"
            )
        click.echo(f"{len(held)} rows hold this number")
        if erase:
            counts = subjects.erase(s, pseudonym, held, svc.directory.register, at)
            done = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing"
            click.echo(f"erased: {done}; kept: {sum(not h.erasable for h in held)}")
