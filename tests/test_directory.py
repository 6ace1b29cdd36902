"""The directory loader and validator: every problem names file, line and key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callrouter.directory import DirectoryError, Problem, load, loads

SHIPPED = Path(__file__).parent.parent / "config/lines.yaml"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

HEAD = """\
timezone: Europe/Amsterdam
language: nl-NL
holidays: NL
internal_number: "+31880100100"
callers:
  - id: utrecht
    name: Gemeente Utrecht
    code: "0344"
    numbers:
      - "+3130286*"
      - "+31612345678"
organisations:
"""


def org(org_id: str, digit: str, *lines: str, extra: str = "") -> str:
    """The YAML text of one organisation holding `lines` (texts made by `line`)."""
    return (
        f"  - id: {org_id}\n"
        f"    name: {org_id.upper()}\n"
        f"    digit: {digit}\n"
        f"{extra}"
        f"    lines:\n" + "".join(lines)
    )


def line(
    line_id: str,
    digit: str = "1",
    numbers: tuple[str, ...] = ('"+31883001001"',),
    hours: str | dict[str, str] | None = None,
    extra: str = "",
) -> str:
    """The YAML text of one line. `hours` maps day keys to raw YAML values, or is inline text."""
    if hours is None:
        hours = {"mon-fri": '"08:30-17:00"'}
    body = (
        f"      - id: {line_id}\n"
        f"        topic: onderwerp {line_id}\n"
        f"        digit: {digit}\n"
        f"{extra}"
        f"        numbers:\n" + "".join(f"          - {n}\n" for n in numbers)
    )
    if isinstance(hours, dict):
        body += "        hours:\n" + "".join(f"          {k}: {v}\n" for k, v in hours.items())
    else:
        body += f"        hours: {hours}\n"
    return body


def valid_text() -> str:
    return HEAD + org("svb", "3", line("svb-aow", "1"), line("svb-kinderbijslag", "2"))


def line_of(text: str, needle: str, after: str | None = None) -> int:
    """1-based number of the first line holding `needle` (after the line holding `after`)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, t in enumerate(lines) if after in t) + 1
    matches = [i + 1 for i, t in enumerate(lines) if i >= start and needle in t]
    assert matches, f"{needle!r} not in text"
    return matches[0]


def problems_of(tmp_path: Path, text: str) -> tuple[str, list[Problem]]:
    """Write `text` to a file, load it, and return the file name and the problems raised."""
    path = tmp_path / "lines.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DirectoryError) as info:
        load(path)
    return str(path), info.value.problems


# --------------------------------------------------------------------------- valid files


def test_shipped_directory_loads():
    """The shipped config/lines.yaml is valid and holds organisations, lines and callers."""
    d = load(SHIPPED)
    assert d.source == str(SHIPPED)
    assert d.timezone == "Europe/Amsterdam" and d.holidays == "NL"
    assert len(d.callers) >= 1 and len(d.organisations) >= 1 and len(d.lines) >= 1


def test_shipped_directory_numbers_are_e164():
    """Every number in the shipped directory is stored in E.164 form."""
    d = load(SHIPPED)
    numbers = [d.internal_number]
    numbers += [n for c in d.callers for n in c.numbers]
    numbers += [o.public_number for o in d.organisations if o.public_number]
    numbers += [n for ln in d.lines for n in ln.numbers + ln.urgent_numbers]
    assert len(numbers) > 20
    assert [n for n in numbers if not E164.match(n)] == []
    assert all(re.match(r"^\+[1-9]\d{1,13}$", p) for c in d.callers for p in c.prefixes)


def test_shipped_directory_national_public_number_is_normalised():
    """Public numbers written nationally in the shipped file ("030-2643000") become E.164."""
    d = load(SHIPPED)
    assert d.organisation("svb").public_number == "+31302643000"


def test_valid_text_loads():
    """The base text used by the failure cases below is itself valid."""
    d = loads(valid_text(), "x.yaml")
    assert [ln.id for ln in d.lines] == ["svb-aow", "svb-kinderbijslag"]
    assert d.caller("utrecht").prefixes == ("+3130286",)
    assert d.caller("utrecht").numbers == ("+31612345678",)


@pytest.mark.parametrize(
    "written",
    [
        '"030 286 1001"',
        '"030-2861001"',
        '"0302861001"',
        '"+31 30 286 1001"',
        '"+31302861001"',
        '"0031302861001"',
    ],
)
def test_line_numbers_are_normalised_to_e164(written):
    """A line number in any usual Dutch notation is stored as +31302861001."""
    d = loads(HEAD + org("svb", "3", line("svb-aow", numbers=(written,))))
    assert d.line("svb-aow").numbers == ("+31302861001",)


def test_internal_and_caller_numbers_are_normalised_to_e164():
    """internal_number and caller numbers written nationally are stored as E.164."""
    text = HEAD.replace('"+31880100100"', '"088 010 0100"').replace(
        '"+31612345678"', '"06 1234 5678"'
    ) + org("svb", "3", line("svb-aow"))
    d = loads(text)
    assert d.internal_number == "+31880100100"
    assert d.caller("utrecht").numbers == ("+31612345678",)


def test_number_block_is_accepted():
    """A number block "+3130286*" is kept as the prefix +3130286."""
    d = loads(valid_text())
    assert "+3130286" in d.caller("utrecht").prefixes


def test_open_on_holidays_closed_on_and_always_hours_are_read():
    """open_on_holidays, closed_on dates and "24/7" hours are read into the Line."""
    extra = '        open_on_holidays: true\n        closed_on: ["2026-12-24", 2026-12-31]\n'
    d = loads(HEAD + org("svb", "3", line("svb-aow", hours='"24/7"', extra=extra)))
    ln = d.line("svb-aow")
    assert ln.open_on_holidays and ln.hours.always
    assert sorted(str(x) for x in ln.closed_on) == ["2026-12-24", "2026-12-31"]


# --------------------------------------------------------------------------- single problems

# Each case: (text, needle, after, path, message fragment). The expected line is the first line
# holding `needle` (after the line holding `after`), computed from the text itself.
ORG_LINE_CASES = {
    "invalid-phone-number": (
        HEAD + org("svb", "3", line("svb-aow", numbers=('"+31883001001"', '"+31 12"'))),
        '"+31 12"',
        None,
        "organisations[0].lines[0].numbers[1]",
        "'+31 12'",
    ),
    "duplicate-line-digit": (
        HEAD + org("svb", "3", line("svb-aow", "1"), line("svb-kinderbijslag", "1")),
        "digit: 1",
        "id: svb-kinderbijslag",
        "organisations[0].lines[1].digit",
        "already used by organisations[0].lines[0]",
    ),
    "duplicate-organisation-digit": (
        HEAD + org("svb", "3", line("svb-aow")) + org("uwv", "3", line("uwv-ww")),
        "digit: 3",
        "id: uwv",
        "organisations[1].digit",
        "already used by organisations[0]",
    ),
    "hours-without-leading-zero-and-minutes": (
        HEAD + org("svb", "3", line("svb-aow", hours={"mon-fri": '"8:30-17"'})),
        "mon-fri:",
        None,
        "organisations[0].lines[0].hours.mon-fri",
        "'8:30-17'",
    ),
    "hours-ending-before-start": (
        HEAD + org("svb", "3", line("svb-aow", hours={"mon-fri": '"17:00-08:00"'})),
        "mon-fri:",
        None,
        "organisations[0].lines[0].hours.mon-fri",
        "ends before it starts",
    ),
    "hours-overlapping-spans": (
        HEAD + org("svb", "3", line("svb-aow", hours={"mon-fri": '"08:00-12:30,12:00-17:00"'})),
        "mon-fri:",
        None,
        "organisations[0].lines[0].hours.mon-fri",
        "overlap",
    ),
    "hours-impossible-time": (
        HEAD + org("svb", "3", line("svb-aow", hours={"mon-fri": '"08:00-25:00"'})),
        "mon-fri:",
        None,
        "organisations[0].lines[0].hours.mon-fri",
        "impossible time",
    ),
    "hours-day-given-twice": (
        HEAD
        + org(
            "svb", "3", line("svb-aow", hours={"mon-fri": '"08:30-17:00"', "wed": '"08:30-12:00"'})
        ),
        "wed:",
        None,
        "organisations[0].lines[0].hours.wed",
        "more than once",
    ),
    "hours-unknown-day": (
        HEAD + org("svb", "3", line("svb-aow", hours={"maandag": '"08:30-17:00"'})),
        "maandag:",
        None,
        "organisations[0].lines[0].hours.maandag",
        "not a day",
    ),
    "hours-yaml-sexagesimal-number": (
        HEAD + org("svb", "3", line("svb-aow", hours={"mon": "8:30"})),
        "mon: 8:30",
        None,
        "organisations[0].lines[0].hours.mon",
        "expected spans",
    ),
    "unknown-line-key": (
        HEAD + org("svb", "3", line("svb-aow", extra="        topc: AOW\n")),
        "topc:",
        None,
        "organisations[0].lines[0].topc",
        "unknown key",
    ),
    "duplicate-line-id-across-organisations": (
        HEAD + org("svb", "3", line("svb-aow")) + org("uwv", "2", line("svb-aow")),
        "id: svb-aow",
        "id: uwv",
        "organisations[1].lines[0].id",
        "duplicate line id",
    ),
    "organisation-digit-0-reserved": (
        HEAD + org("svb", "0", line("svb-aow")),
        "digit: 0",
        None,
        "organisations[0].digit",
        "reserved",
    ),
    "bad-closed-on-date": (
        HEAD + org("svb", "3", line("svb-aow", extra='        closed_on: ["2026-13-01"]\n')),
        "closed_on:",
        None,
        "organisations[0].lines[0].closed_on[0]",
        "'2026-13-01'",
    ),
    "ring-seconds-out-of-range": (
        HEAD + org("svb", "3", line("svb-aow", extra="        ring_seconds: 2\n")),
        "ring_seconds:",
        None,
        "organisations[0].lines[0].ring_seconds",
        "5 to 120",
    ),
    "open-on-holidays-not-boolean": (
        HEAD + org("svb", "3", line("svb-aow", extra="        open_on_holidays: ja\n")),
        "open_on_holidays:",
        None,
        "organisations[0].lines[0].open_on_holidays",
        "true or false",
    ),
    "bad-line-id": (
        HEAD + org("svb", "3", line("SVB AOW")),
        "id: SVB AOW",
        None,
        "organisations[0].lines[0].id",
        "expected an id",
    ),
    "invalid-public-number": (
        HEAD + org("svb", "3", line("svb-aow"), extra='    public_number: "12345"\n'),
        "public_number:",
        None,
        "organisations[0].public_number",
        "'12345'",
    ),
}

CALLER_CASES = {
    "duplicate-yaml-key": (
        HEAD.replace(
            "    name: Gemeente Utrecht\n", "    name: Gemeente Utrecht\n    name: Tweede naam\n"
        ),
        "name: Tweede naam",
        None,
        "callers[0].name",
        "duplicate key",
    ),
    "bad-number-block": (
        HEAD.replace('"+3130286*"', '"+31abc*"'),
        '"+31abc*"',
        None,
        "callers[0].numbers[0]",
        "not a number block",
    ),
    "pin-hash-not-argon2": (
        HEAD.replace(
            '    code: "0344"\n', '    code: "0344"\n    pin_hash: "$2b$12$abcdefghijk"\n'
        ),
        "pin_hash:",
        None,
        "callers[0].pin_hash",
        "argon2",
    ),
    "unknown-caller-key": (
        HEAD.replace('    code: "0344"\n', '    code: "0344"\n    pin: "1234"\n'),
        "pin:",
        None,
        "callers[0].pin",
        "unknown key",
    ),
    "duplicate-caller-code": (
        HEAD.replace(
            "organisations:\n",
            "  - id: amsterdam\n    name: Gemeente Amsterdam\n"
            '    code: "0344"\n    numbers: ["+3120555*"]\n'
            "organisations:\n",
        ),
        'code: "0344"',
        "id: amsterdam",
        "callers[1].code",
        "already used by callers[0]",
    ),
    "bad-timezone": (
        HEAD.replace("timezone: Europe/Amsterdam", "timezone: Europe/Utrecht"),
        "timezone:",
        None,
        "timezone",
        "'Europe/Utrecht'",
    ),
    "missing-internal-number": (
        HEAD.replace('internal_number: "+31880100100"\n', ""),
        "timezone:",
        None,
        "",
        "missing required key 'internal_number'",
    ),
    "invalid-internal-number": (
        HEAD.replace('"+31880100100"', '"+31 88"'),
        "internal_number:",
        None,
        "internal_number",
        "'+31 88'",
    ),
}


ALL_CASES = {
    **ORG_LINE_CASES,
    **{
        k: (text + org("svb", "3", line("svb-aow")), *rest)
        for k, (text, *rest) in CALLER_CASES.items()
    },
}


@pytest.mark.parametrize(
    ("text", "needle", "after", "path", "message"), ALL_CASES.values(), ids=ALL_CASES.keys()
)
def test_single_problem_names_file_line_and_path(tmp_path, text, needle, after, path, message):
    """One mistake gives exactly one Problem with the file, the key's line and its key path."""
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert problem.file == file
    assert problem.line == line_of(text, needle, after)
    assert problem.path == path
    assert message in problem.message


def test_loads_uses_given_file_name():
    """loads() puts the file name it was given into each Problem."""
    text = HEAD + org("svb", "0", line("svb-aow"))
    with pytest.raises(DirectoryError) as info:
        loads(text, "config/other.yaml")
    assert [p.file for p in info.value.problems] == ["config/other.yaml"]


def test_several_problems_are_all_reported():
    """Independent mistakes are all reported, each at its own path, in one DirectoryError."""
    text = HEAD.replace('code: "0344"', 'code: "34a"') + org(
        "svb", "0", line("svb-aow", extra="        topc: AOW\n")
    )
    with pytest.raises(DirectoryError) as info:
        loads(text, "x.yaml")
    assert sorted(p.path for p in info.value.problems) == [
        "callers[0].code",
        "organisations[0].digit",
        "organisations[0].lines[0].topc",
    ]


def test_duplicate_line_id_is_reported_at_its_own_line_after_an_invalid_line():
    """A duplicate line id is reported at its own line even when an earlier line is invalid."""
    text = (
        HEAD
        + org("svb", "3", line("svb-aow"))
        + org("uwv", "2", line("BAD ID", "1"), line("svb-aow", "2"))
    )
    with pytest.raises(DirectoryError) as info:
        loads(text, "x.yaml")
    dup = [p for p in info.value.problems if "duplicate line id" in p.message]
    assert [(p.path, p.line) for p in dup] == [
        ("organisations[1].lines[1].id", line_of(text, "id: svb-aow", after="id: BAD ID"))
    ]


def test_unquoted_octal_looking_number_is_not_silently_changed():
    """Unquoted 0612345670 (octal in YAML 1.1) is rejected or kept, never made another number."""
    text = HEAD + org("svb", "3", line("svb-aow", numbers=("0612345670",)))
    try:
        d = loads(text, "x.yaml")
    except DirectoryError as exc:
        assert [p.path for p in exc.problems] == ["organisations[0].lines[0].numbers[0]"]
    else:
        assert d.line("svb-aow").numbers == ("+31612345670",)


# --------------------------------------------------------------------------- whole-file errors


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("timezone: Europe/Amsterdam\ncallers: [\n", 3),
        ("timezone: Europe/Amsterdam\ncallers: a: b\n", 2),
        ("timezone: Europe/Amsterdam\n\tcallers: []\n", 2),
    ],
    ids=["unclosed-flow", "mapping-in-scalar", "tab-indent"],
)
def test_not_yaml_gives_one_problem_at_its_line(tmp_path, text, line):
    """Text that is not YAML gives one top-level problem at the line where parsing failed."""
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].file == file
    assert problems[0].line == line
    assert problems[0].path == ""
    assert problems[0].message.startswith("not valid YAML")


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"]
)
def test_empty_file_gives_one_problem(tmp_path, text):
    """An empty file (or one with only comments) is reported as empty."""
    file, problems = problems_of(tmp_path, text)
    assert problems == [Problem(file, 1, "", "the file is empty")]


def test_top_level_not_a_mapping(tmp_path):
    """A file whose top level is a list is one problem at the top level."""
    file, problems = problems_of(tmp_path, "- a\n- b\n")
    assert len(problems) == 1
    assert problems[0].path == "" and "mapping" in problems[0].message


def test_missing_file_is_reported_without_line(tmp_path):
    """A file that cannot be read gives a problem with no line."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(DirectoryError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.file == str(path) and problem.line is None
    assert "cannot read file" in problem.message
    assert str(problem).startswith(f"{path}: (top level): cannot read file")


# --------------------------------------------------------------------------- str(problem)


def test_problem_str_is_file_line_path_message(tmp_path):
    """str(problem) reads "FILE:LINE: PATH: message"."""
    text = HEAD + org("svb", "3", line("svb-aow", extra="        topc: AOW\n"))
    file, problems = problems_of(tmp_path, text)
    (problem,) = problems
    n = line_of(text, "topc:")
    assert str(problem) == f"{file}:{n}: organisations[0].lines[0].topc: {problem.message}"
    assert re.fullmatch(r".+:\d+: \S+: .+", str(problem))


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (
            Problem("lines.yaml", 12, "callers[0].code", "bad"),
            "lines.yaml:12: callers[0].code: bad",
        ),
        (Problem("lines.yaml", 3, "", "bad"), "lines.yaml:3: (top level): bad"),
        (Problem("lines.yaml", None, "", "bad"), "lines.yaml: (top level): bad"),
    ],
    ids=["full", "top-level", "no-line"],
)
def test_problem_str_forms(problem, expected):
    """str(Problem) shows the line when known and "(top level)" for an empty path."""
    assert str(problem) == expected


def test_directory_error_message_lists_every_problem():
    """The DirectoryError message is one line per problem, in str(problem) form."""
    text = HEAD.replace('code: "0344"', 'code: "34a"') + org("svb", "0", line("svb-aow"))
    with pytest.raises(DirectoryError) as info:
        loads(text, "x.yaml")
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    assert len(info.value.problems) == 2


@pytest.mark.parametrize("written,kept", [("0344", "0344"), ("344", "344"), ('"0344"', "0344")])
def test_code_is_kept_as_written(written, kept):
    """A code written without quotes keeps its leading zero (YAML would read 0344 as octal)."""
    d = loads(
        HEAD.replace('code: "0344"', f"code: {written}") + org("svb", "3", line("svb-aow")),
        "x.yaml",
    )
    assert d.caller("utrecht").code == kept


@pytest.mark.parametrize("written", ["+31883001001", "0883001001"])
def test_unquoted_number_is_read_as_written(written):
    """An unquoted phone number is taken as written, not as YAML's integer of it."""
    d = loads(HEAD + org("svb", "3", line("svb-aow", numbers=(written,))), "x.yaml")
    assert d.line("svb-aow").numbers == ("+31883001001",)


def test_a_file_without_its_top_level_lists_is_reported_not_hung_on():
    """Only `organisations` given: every missing list is named, at the top of the file (this
    once looked for the line of `callers` forever)."""
    with pytest.raises(DirectoryError) as info:
        loads("organisations: []\n", "lines.yaml")
    paths = {(p.path, p.line) for p in info.value.problems}
    assert ("callers", 1) in paths and ("organisations", 1) in paths


def test_an_impossible_date_is_a_problem_with_its_line():
    text = Path("config/lines.yaml").read_text(encoding="utf-8")
    broken = text.replace('closed_on: ["2026-12-24", "2026-12-31"]', "closed_on: [2026-13-01]", 1)
    assert broken != text
    line = broken[: broken.index("2026-13-01")].count("\n") + 1
    with pytest.raises(DirectoryError) as info:
        loads(broken, "lines.yaml")
    (problem,) = info.value.problems
    assert problem.line == line and problem.path.endswith("closed_on[0]")
    assert "is not a date" in problem.message


def test_reading_the_directory_keeps_nothing_of_the_file_afterwards():
    """The reload of a long-running service must not grow: no YAML node outlives a read."""
    import gc

    import yaml

    def nodes() -> int:
        gc.collect()
        return sum(isinstance(o, yaml.Node) for o in gc.get_objects())

    text = Path("config/lines.yaml").read_text(encoding="utf-8")
    loads(text, "lines.yaml")
    before = nodes()
    for _ in range(3):
        loads(text, "lines.yaml")
    assert nodes() == before
