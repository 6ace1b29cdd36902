"""The call log as CSV: the same filters and scope as the list, streamed in batches."""

from __future__ import annotations

import csv
import io

from flask import Response, request, stream_with_context

from callrouter import clock, services
from callrouter.dashboard import queries
from callrouter.dashboard.blueprint import bp, current_org, record
from callrouter.dashboard.csvsafe import safe_cell
from callrouter.ldv import kinds as ldv

EXPORT_MAX = 100_000


def org_scope(org: str | None) -> str:
    return org or "*"


CSV_COLUMNS = (
    "ontvangen",
    "gemeente",
    "organisatie",
    "lijn",
    "uitkomst",
    "spoed",
    "toestemming",
    "nummer (gemaskeerd)",
    "wachttijd tot aannemen (s)",
    "minuten bespaard",
    "duur (s)",
)


@bp.get("/calls.csv")
def export():
    svc = services.current()
    f, clean = queries.parse_filters(request.args, svc.directory)
    tz = svc.directory.tz
    record(
        "export",
        obj="calls.csv",
        detail={"filters": clean},
        ldv=[
            # One record for the export (its subjects are every worker in the rows): what
            # was asked for, never who is in it.
            ldv.dashboard(
                svc.directory.register,
                "csv-exported",
                at=clock.now(),
                attributes={f"callrouter.filter.{k}": str(v) for k, v in clean.items()}
                | {"callrouter.scope": org_scope(current_org())},
            )
        ],
    )
    org = current_org()

    def rows():
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=";")
        writer.writerow(CSV_COLUMNS)
        with svc.sessions() as s:
            batch = []
            for call in queries.calls_for_export(s, org, f, EXPORT_MAX):
                batch.append(call)
                if len(batch) >= 500:
                    _write(s, writer, batch, tz)
                    batch = []
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            _write(s, writer, batch, tz)
        yield buf.getvalue()

    stamp = clock.now().astimezone(tz).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="callrouter-gesprekken-{stamp}.csv"'
        },
    )


def _write(s, writer, calls, tz) -> None:
    summary = queries.call_summaries(s, calls)
    for c in calls:
        tta, saved = summary[c.id]
        writer.writerow(
            [
                safe_cell(v)
                for v in (
                    c.received_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                    c.caller_org or "",
                    c.target_org or "",
                    c.line_id or "",
                    c.outcome or "",
                    "ja" if c.urgent else "nee",
                    "ja" if c.consent else "nee",
                    c.from_masked or "",
                    "" if tta is None else f"{tta:.0f}",
                    f"{saved:.0f}" if saved else "",
                    c.duration_s if c.duration_s is not None else "",
                )
            ]
        )
