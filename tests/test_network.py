"""The learning network's report on simulated traffic over the shipped directory: planted
patterns are found with their evidence, noise suggests nothing, the patch applies and passes
`lines check`, supervisors see no small cells."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from callrouter import directory as directory_mod
from callrouter import network, simulate
from callrouter.dashboard.queries import day_start
from callrouter.flows import network as nflow

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "lines.yaml"
UNTIL = date(2026, 11, 23)
DAYS = 100


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory):
    """The shipped directory (the simulation uses its opening hours and keywords)."""
    path = tmp_path_factory.mktemp("shipped") / "lines.yaml"
    shutil.copy(SHIPPED, path)
    return path


def report_of(app, days=DAYS, org=None):
    svc = app.extensions["callrouter"]
    d = svc.directory
    with svc.sessions() as s:
        return network.collect(
            s, d, day_start(UNTIL - timedelta(days=days), d.tz), day_start(UNTIL, d.tz), org
        )


def test_wilson_bounds():
    """Wilson's interval: known values, and no certainty from no data."""
    lo, hi = nflow.wilson(5, 10)
    assert round(lo, 3) == 0.237 and round(hi, 3) == 0.763
    assert nflow.wilson(0, 0) == (0.0, 1.0)
    assert nflow.wilson(0, 20)[0] == 0.0 and nflow.wilson(20, 20)[1] == 1.0


def test_planted_patterns_are_found_with_their_evidence(app):
    """A phrase sent to the wrong organisation, a line unanswered at lunch and three lines
    that keep occurring together: each is a suggestion naming its numbers."""
    svc = app.extensions["callrouter"]
    plan = simulate.plan(svc.directory)
    simulate.simulate(svc.engine, svc.directory, DAYS, 7, simulate.PLANTS, until=UNTIL)
    report = report_of(app)
    kinds = {s.kind: s for s in report.suggestions}
    assert set(kinds) == {"keyword", "slot", "life-event"}, report.suggestions
    move = kinds["keyword"]
    assert (move.term, move.from_line, move.to_line) == (
        plan.phrase_term,
        plan.phrase_line.id,
        plan.phrase_to.id,
    )
    assert move.known >= 30 and move.wrong_lower >= 0.3 and move.moved <= move.wrong
    slot = kinds["slot"]
    assert slot.line_id == plan.lunch_line.id and slot.hour == 12
    assert set(slot.weekdays) <= {0, 1, 2, 3, 4} and slot.answered_upper < 0.5
    event = kinds["life-event"]
    assert set(event.lines) == {ln.id for ln in plan.together} and event.cases >= 30
    text = network.as_text(report, svc.directory)
    assert "suggestions:" in text and plan.phrase_term in text and "12:00-13:00" in text
    line = report.lines[plan.lunch_line.id]
    assert line.slots[(0, 12)][0] > 0 and line.median_answer_s is not None


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_noise_suggests_nothing(app, seed):
    """The same traffic without plants gives evidence tables but no suggestion."""
    svc = app.extensions["callrouter"]
    counts = simulate.simulate(svc.engine, svc.directory, DAYS, seed, (), until=UNTIL)
    assert counts["transfers"] > 5000
    report = report_of(app)
    assert report.lines and report.terms and report.multi_cases > 0
    assert report.suggestions == []


def test_patch_applies_with_git_and_passes_lines_check(app, tmp_path):
    """--format patch is a unified diff that `git apply` takes on a copy of the directory;
    the result passes `lines check`."""
    svc = app.extensions["callrouter"]
    simulate.simulate(svc.engine, svc.directory, DAYS, 7, simulate.PLANTS, until=UNTIL)
    report = report_of(app)
    diff, kept = network.patch(
        report, svc.directory, SHIPPED.read_text(encoding="utf-8"), "config/lines.yaml"
    )
    assert {s.kind for s in kept} == {"keyword", "slot", "life-event"}
    repo = tmp_path / "copy"
    (repo / "config").mkdir(parents=True)
    shutil.copy(SHIPPED, repo / "config" / "lines.yaml")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (tmp_path / "p.diff").write_text(diff, encoding="utf-8")
    subprocess.run(["git", "apply", "--check", str(tmp_path / "p.diff")], cwd=repo, check=True)
    subprocess.run(["git", "apply", str(tmp_path / "p.diff")], cwd=repo, check=True)
    patched = directory_mod.load(repo / "config" / "lines.yaml")
    plan = simulate.plan(svc.directory)
    assert plan.phrase_term in [k.lower() for k in patched.line(plan.phrase_to.id).keywords]
    assert len(patched.life_events) == len(svc.directory.life_events) + 1
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from callrouter.cli import main; main()",
            "lines",
            "check",
            str(repo / "config" / "lines.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


def test_cli_report_formats(app):
    """The command prints text, JSON and a patch; bad dates are refused."""
    svc = app.extensions["callrouter"]
    simulate.simulate(svc.engine, svc.directory, 30, 3, ("lunch",), until=UNTIL)
    runner = app.test_cli_runner()
    args = ["network", "report", "--since", "2026-10-24", "--until", "2026-11-22"]
    text = runner.invoke(args=args)
    assert text.exit_code == 0 and "heat map" in text.output
    data = json.loads(runner.invoke(args=[*args, "--format", "json"]).output)
    assert data["lines"] and "thresholds" in data
    assert runner.invoke(args=["network", "report", "--since", "gisteren"]).exit_code != 0


def test_supervisors_see_no_small_cells_and_nobody_sees_numbers(app):
    """Cells under the minimum are hidden outside the admin role; the report holds no phone
    numbers and no case references."""
    svc = app.extensions["callrouter"]
    simulate.simulate(svc.engine, svc.directory, 20, 4, (), until=UNTIL)
    report = report_of(app, 20)
    admin = network.as_dict(report, svc.directory, admin=True)
    supervisor = network.as_dict(report, svc.directory, admin=False)
    cells = [c for ln in admin["lines"] for c in ln["heat_map"]]
    small = [c for c in cells if c["transfers"] and c["transfers"] < 5]
    assert small, "the test needs some small cells"
    hidden = [c for ln in supervisor["lines"] for c in ln["heat_map"] if c["transfers"] is None]
    assert len(hidden) == len(small)
    dump = json.dumps(supervisor, default=str)
    from callrouter.models import Case

    with svc.sessions() as s:
        refs = [r for (r,) in s.query(Case.reference).limit(200)]
    assert "+31" not in dump and not any(f'"{r}"' in dump for r in refs)


def test_network_page_for_admins_and_supervisors(app, monkeypatch):
    """Admins see the suggestions and every cell; a supervisor sees their own lines, small
    cells hidden, and no suggestions."""
    from datetime import UTC, datetime

    from callrouter import clock

    from dashboard_helpers import login, make_user

    svc = app.extensions["callrouter"]
    simulate.simulate(svc.engine, svc.directory, DAYS, 7, simulate.PLANTS, until=UNTIL)
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 11, 24, 9, tzinfo=UTC))
    make_user(app, "beheer@x.nl", "admin")
    make_user(app, "sup@svb.nl", "supervisor", "svb")
    plan = simulate.plan(svc.directory)
    with app.test_client() as c:
        login(c, "beheer@x.nl")
        page = c.get("/dashboard/network").get_data(as_text=True)
        assert 'id="suggestions"' in page and plan.phrase_term in page
        assert "12:00-13:00" in page and 'id="heat-' in page
    with app.test_client() as c:
        login(c, "sup@svb.nl")
        page = c.get("/dashboard/network").get_data(as_text=True)
        assert 'id="suggestions"' not in page and "&lt;5" in page
        assert "AOW" in page and "kinderbijslag" in page
        other = [ln for ln in svc.directory.lines if ln.organisation_id == "duo"][0]
        assert f'id="heat-{other.id}"' not in page
