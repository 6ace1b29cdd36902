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
