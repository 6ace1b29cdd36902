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
callbacks_cli = AppGroup("callbacks", help="List, cancel and reschedule callback requests.")
sandbox_cli = AppGroup("sandbox", help="Calls without a Twilio account or a phone.")
users_cli = AppGroup("users", help="Dashboard accounts.")
tokens_cli = AppGroup("tokens", help="Bearer tokens of the read-only API.")
figures_cli = AppGroup("figures", help="The dashboard's daily figures.")
retention_cli = AppGroup("retention", help="Remove personal data past its retention period.")
network_cli = AppGroup("network", help="The learning network: report, suggestions, demo data.")


def _day(value: str | None, name: str):
    from datetime import date

    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date such as 2026-11-30", param_hint=name
        ) from None


@network_cli.command("report")
@click.option("--since", default=None, help="first day (default: 90 days ago)")
@click.option("--until", default=None, help="last day (default: yesterday)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "patch"]),
    default="text",
    show_default=True,
)
@click.option("--org", default=None, help="only what this organisation made or received")
@click.option(
    "--min-sample", type=int, default=None, help="observations before a suggestion (default 30)"
)
@click.option(
    "--min-cell",
    type=int,
    default=None,
    help="smallest count shown to supervisors (default 5; admins see all)",
)
@click.option(
    "--threshold",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="any rule threshold, e.g. wrong_share=0.4 or z=2.58 (see the README)",
)
@click.option("--supervisor", is_flag=True, help="as a supervisor sees it: small cells hidden")
def network_report(since, until, fmt, org, min_sample, min_cell, overrides, supervisor):
    """Evidence per line, speech term and combination of lines, with suggested changes to the
    directory (never applied: --format patch prints a diff for `git apply`)."""
    import dataclasses
    import json
    import os
    from datetime import timedelta

    from callrouter import clock, network, services
    from callrouter.flows import network as nflow

    svc = services.current()
    d = svc.directory
    today = clock.now().astimezone(d.tz).date()
    last = _day(until, "--until") or today - timedelta(days=1)
    first = _day(since, "--since") or last - timedelta(days=89)
    t = nflow.Thresholds()
    if min_sample is not None:
        t = dataclasses.replace(t, min_sample=max(1, min_sample))
    if min_cell is not None:
        t = dataclasses.replace(t, min_cell=max(1, min_cell))
    for item in overrides:
        name, _, value = item.partition("=")
        field = {f.name: f for f in dataclasses.fields(t)}.get(name.strip())
        try:
            if field is None:
                raise ValueError
            t = dataclasses.replace(t, **{field.name: type(getattr(t, field.name))(value)})
        except ValueError:
            names = ", ".join(f.name for f in dataclasses.fields(t))
            raise click.BadParameter(
                f"{item!r}: use NAME=VALUE with a name of {names}", param_hint="--threshold"
            ) from None
    with svc.sessions() as s:
        report = network.collect_days(s, d, first, last, org, t)
    if fmt == "json":
        click.echo(json.dumps(network.as_dict(report, d, not supervisor, t), indent=2, default=str))
    elif fmt == "patch":
        path = svc.settings.lines_path
        rel = os.path.relpath(path, os.getcwd())
        diff, kept = network.patch(report, d, path.read_text(encoding="utf-8"), rel)
        click.echo(diff, nl=False)
        click.echo(f"{len(kept)} suggestion(s) in the patch; review, then: git apply", err=True)
    else:
        click.echo(network.as_text(report, d, not supervisor, t), nl=False)


@network_cli.command("simulate")
@click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--plant",
    "plants",
    multiple=True,
    type=click.Choice(["phrase", "lunch", "together"]),
    help="a pattern for the report to find (repeat for several)",
)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="traffic per open hour relative to the default",
)
def network_simulate(days, seed, plants, scale):
    """Fill the database with realistic demo traffic over the directory."""
    from callrouter import services, simulate

    svc = services.current()
    counts = simulate.simulate(svc.engine, svc.directory, days, seed, plants, scale=scale)
    click.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["admin", "supervisor"]), required=True)
@click.option(
    "--org",
    "org",
    default=None,
    help="a supervisor's caller or organisation id (what they may see)",
)
@click.option(
    "--password",
    default=None,
    envvar="CALLROUTER_NEW_PASSWORD",
    help="default: asked at a prompt (or CALLROUTER_NEW_PASSWORD)",
)
def users_create(email, role, org, password):
    """Create a dashboard account (argon2id password hash)."""
    from callrouter import services
    from callrouter.dashboard import auth

    if password is None:
        password = click.prompt(
            "Password (at least 12 characters)", hide_input=True, confirmation_prompt=True
        )
    svc = services.current()
    try:
        with svc.sessions.begin() as s:
            user = auth.create_user(s, svc.directory, email, password, role, org)
            auth.audit(s, "cli", "create-user", "success", obj=f"user:{user.email}")
    except auth.AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"created {role} {user.email}" + (f" for {user.org_id}" if user.org_id else ""))


@retention_cli.command("purge")
def retention_purge():
    """Remove personal fields of the call log past their retention period now."""
    from callrouter import retention

    counts = retention.purge()
    click.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))


@figures_cli.command("rollup")
@click.option("--rebuild", is_flag=True, help="drop the stored days and build them again")
def figures_rollup(rebuild):
    """Store the figures of settled days (the daily job does this; --rebuild after a
    correction of old call log rows or a change of the directory's time zone)."""
    from callrouter import figures

    click.echo(f"days stored: {figures.build_now(rebuild=rebuild)}")


@tokens_cli.command("create")
@click.option("--name", required=True)
@click.option("--org", "org", default=None, help="scope: a caller or organisation id")
def tokens_create(name, org):
    """Create an API token; it is shown once and stored hashed."""
    from callrouter import services
    from callrouter.dashboard import auth

    svc = services.current()
    try:
        with svc.sessions.begin() as s:
            token = auth.create_token(s, svc.directory, name, org)
            auth.audit(s, "cli", "create-token", "success", obj=f"token:{name}")
    except auth.AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(token)


@tokens_cli.command("revoke")
@click.option("--name", required=True)
def tokens_revoke(name):
    """Revoke an API token by name."""
    from callrouter import services
    from callrouter.dashboard import auth

    with services.current().sessions.begin() as s:
        ok = auth.revoke_token(s, name)
        if ok:
            auth.audit(s, "cli", "revoke-token", "success", obj=f"token:{name}")
    if not ok:
        click.echo(f"error: no active token named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked {name}")


@sandbox_cli.command("call")
@click.option("--from", "from_", required=True, help="the number the worker calls from")
@click.option(
    "--press",
    multiple=True,
    help="keys (or 'say:phrase') for each prompt in turn; also as one list: --press 3 1",
)
@click.option(
    "--answer",
    type=click.Choice(["accept", "decline", "busy", "no-answer"]),
    default="accept",
    show_default=True,
    help="what every professional does",
)
@click.option(
    "--then",
    "then",
    default="hangup",
    show_default=True,
    help="once connected: hangup, or handover:+316... (add the citizen, then leave)",
)
@click.option(
    "--expect",
    default=None,
    help="the call's expected outcome (default: connected when --answer accept)",
)
@click.option(
    "--shuffle-callbacks",
    "shuffle",
    is_flag=True,
    help="deliver status and conference callbacks out of order, sometimes twice, as Twilio may",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="the shuffle's seed (default: a new one, printed; give it to replay)",
)
@click.argument("more", nargs=-1)
def sandbox_call(from_, press, answer, then, expect, shuffle, seed, more):
    """Play one whole call through the sandbox and print what every party heard."""
    import random

    from callrouter.sandbox.script import RealCredentials, Runner

    keys = [*press, *more]
    if shuffle and seed is None:
        seed = random.SystemRandom().randrange(2**32)
    try:
        runner = Runner(shuffle=seed if shuffle else None)
    except RealCredentials as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        outcome = runner.call(from_, keys, answer=answer, then=then)
    finally:
        runner.close()
    click.echo(outcome.text())
    if shuffle:
        click.echo(f"-- callbacks shuffled with seed {seed}")
    expected = expect or ("connected" if answer == "accept" else None)
    click.echo(
        f"-- outcome: {outcome.call_outcome}; transfers: "
        f"{', '.join(outcome.transfer_outcomes) or '-'}; callbacks: "
        f"{', '.join(outcome.callbacks) or '-'}"
    )
    if expected and outcome.call_outcome != expected:
        click.echo(f"error: expected outcome {expected}, got {outcome.call_outcome}", err=True)
        sys.exit(1)


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


@callbacks_cli.command("list")
@click.option(
    "--state",
    default="open",
    help="open (pending or running), pending, done, failed, cancelled or all",
)
@click.option("--limit", default=50, show_default=True)
def callbacks_list(state: str, limit: int) -> None:
    """List callback requests, next planned first (masked numbers only)."""
    from sqlalchemy import select

    from callrouter import callbacks, services
    from callrouter.models import CallbackRequest

    svc = services.current()
    q = select(CallbackRequest).order_by(CallbackRequest.planned_at, CallbackRequest.requested_at)
    if state == "open":
        q = q.where(CallbackRequest.state.in_(callbacks.OPEN))
    elif state != "all":
        q = q.where(CallbackRequest.state == state)
    with svc.sessions() as s:
        rows = s.scalars(q.limit(limit)).all()
    if not rows:
        click.echo("no callback requests")
        return
    tz = svc.directory.tz
    click.echo(
        f"{'id':32}  {'ref':6}  {'state':10}  {'planned':16}  {'line':24}  "
        f"{'caller':12}  att  urgent  worker"
    )
    for r in rows:
        planned = r.planned_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if r.planned_at else "-"
        click.echo(
            f"{r.id:32}  {r.reference:6}  {r.state:10}  {planned:16}  {r.line_id:24}  "
            f"{(r.caller_org or '-'):12}  {r.attempts:>3}  {'yes' if r.urgent else 'no':6}"
            f"  {r.worker_masked or '-'}"
        )


def _find_request(ident: str):
    from sqlalchemy import or_, select

    from callrouter import services
    from callrouter.models import CallbackRequest

    with services.current().sessions() as s:
        req = s.scalar(
            select(CallbackRequest).where(
                or_(CallbackRequest.id == ident, CallbackRequest.reference == ident.upper())
            )
        )
    if req is None:
        click.echo(f"error: no callback request {ident}", err=True)
        sys.exit(1)
    return req


@callbacks_cli.command("cancel")
@click.argument("ident")
def callbacks_cancel(ident: str) -> None:
    """Cancel a pending request (by id or reference)."""
    from callrouter import callbacks

    req = _find_request(ident)
    if not callbacks.cancel(req.id, by="operator"):
        click.echo(
            f"error: request {req.reference} is {req.state}; only pending requests can "
            "be cancelled",
            err=True,
        )
        sys.exit(1)
    click.echo(f"cancelled {req.reference}")


@callbacks_cli.command("reschedule")
@click.argument("ident")
@click.option(
    "--at", "at", required=True, help="local time in the directory's zone, e.g. 2026-11-26T09:00"
)
def callbacks_reschedule(ident: str, at: str) -> None:
    """Move a pending request to another time (it still waits for the line to be open)."""
    from datetime import datetime

    from callrouter import callbacks, services
    from callrouter.flows import callback as cflow

    svc = services.current()
    try:
        local = datetime.fromisoformat(at)
    except ValueError:
        click.echo(f"error: --at {at!r} is not a time such as 2026-11-26T09:00", err=True)
        sys.exit(1)
    if local.tzinfo is None:
        local = local.replace(tzinfo=svc.directory.tz)
    req = _find_request(ident)
    d = svc.directory
    planned = cflow.plan(d, d.line(req.line_id), d.caller(req.caller_org), local)
    if planned is None or not callbacks.reschedule(req.id, planned):
        click.echo(f"error: request {req.reference} cannot be rescheduled ({req.state})", err=True)
        sys.exit(1)
    click.echo(f"rescheduled {req.reference} to {planned:%Y-%m-%d %H:%M %Z}")


def init_app(app: Flask) -> None:
    app.cli.add_command(lines_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(callbacks_cli)
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(figures_cli)
    app.cli.add_command(network_cli)
    from callrouter.ldv.cli import ldv_cli, privacy_cli

    app.cli.add_command(ldv_cli)
    app.cli.add_command(privacy_cli)


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
    click.echo(
        "usage: callrouter lines check [PATH]   (the rest: flask --app app --help)", err=True
    )
    sys.exit(2)
