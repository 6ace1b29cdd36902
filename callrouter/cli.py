"""Operator commands: `flask --app app lines check|hash-pin`, `flask --app app db upgrade`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from callrouter import directory as directory_mod

lines_cli = AppGroup("lines", help="Check the line directory and make PIN hashes.")
db_cli = AppGroup("db", help="Database schema.")


@lines_cli.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def lines_check(path: Path | None) -> None:
    """Validate the directory file (default: CALLROUTER_LINES) and print a summary."""
    from flask import current_app

    path = path or current_app.config["CALLROUTER_SETTINGS"].lines_path
    try:
        d = directory_mod.load(path)
    except directory_mod.DirectoryError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        n = len(exc.problems)
        click.echo(f"{path}: {n} problem{'s' if n != 1 else ''}; fix and check again.", err=True)
        sys.exit(1)
    click.echo(directory_mod.summary(d))


@lines_cli.command("hash-pin")
def lines_hash_pin() -> None:
    """Read an organisation's PIN at a prompt and print its argon2 hash for `pin_hash`."""
    from callrouter.flows.routing import hash_pin

    pin = click.prompt("PIN (4 to 8 digits)", hide_input=True, confirmation_prompt=True)
    if not pin.isdigit() or not 4 <= len(pin) <= 8:
        click.echo("error: a PIN is 4 to 8 digits, so that it can be keyed on a phone", err=True)
        sys.exit(1)
    click.echo(hash_pin(pin))


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all schema migrations."""
    from callrouter import db, services

    svc = services.current()
    db.upgrade(svc.engine, svc.settings.instance_path)
    click.echo("database schema is up to date")


def init_app(app: Flask) -> None:
    app.cli.add_command(lines_cli)
    app.cli.add_command(db_cli)


def main() -> None:
    """`callrouter lines check PATH` without an app (no database, no Redis needed)."""
    args = sys.argv[1:]
    if len(args) >= 2 and args[:2] == ["lines", "check"]:
        path = Path(args[2]) if len(args) > 2 else Path("config/lines.yaml")
        try:
            click.echo(directory_mod.summary(directory_mod.load(path)))
        except directory_mod.DirectoryError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(1)
        return
    click.echo("usage: callrouter lines check [PATH]   (the rest: flask --app app --help)",
               err=True)
    sys.exit(2)
