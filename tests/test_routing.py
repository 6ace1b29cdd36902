"""Routing decisions: who is calling, which line they chose, and the menu conversation."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrouter.directory import Directory, load, loads
from callrouter.flows import menu
from callrouter.flows.routing import (
    Choice,
    check_pin,
    hash_pin,
    identify,
    normalise_number,
    resolve_digits,
    resolve_speech,
)

SHIPPED = Path(__file__).parent.parent / "config/lines.yaml"

CALLERS_YAML = """\
timezone: Europe/Amsterdam
holidays: NL
internal_number: "+31880100100"
callers:
  - id: utrecht-region
    name: Regio Utrecht
    code: "0300"
    numbers: ["+3130*"]
  - id: utrecht
    name: Gemeente Utrecht
    code: "0344"
    numbers: ["+3130286*"]
    pin_hash: "{utrecht_hash}"
  - id: utrecht-desk
    name: Gemeente Utrecht balie
    code: "0345"
    numbers: ["+31302860001", "06 1234 5678"]
    pin_hash: "{desk_hash}"
  - id: no-pin
    name: Gemeente Zonder Pin
    code: "0999"
    numbers: ["+31505550100"]
organisations:
  - id: svb
    name: SVB
    digit: 3
    lines:
      - id: svb-aow
        topic: AOW
        digit: 1
        numbers: ["+31883001001"]
        hours: "24/7"
"""


@pytest.fixture(scope="module")
def callers() -> Directory:
    """A directory with nested number blocks, exact numbers and PIN hashes."""
    return loads(
        CALLERS_YAML.format(utrecht_hash=hash_pin("2222"), desk_hash=hash_pin("4321")),
        "callers.yaml",
    )


@pytest.fixture(scope="module")
def shipped() -> Directory:
    """The shipped example directory."""
    return load(SHIPPED)


# --------------------------------------------------------------------------- identify


@pytest.mark.parametrize(
    ("number", "caller_id"),
    [
        ("+31302860001", "utrecht-desk"),  # exact number inside both blocks
        ("+31302860002", "utrecht"),  # longest block +3130286
        ("+31302990000", "utrecht-region"),  # only the short block +3130
        ("0302860000", "utrecht"),  # national form
        ("030 286 0001", "utrecht-desk"),  # national form with spaces, exact number
        ("0031302860002", "utrecht"),  # international prefix 00
        ("+31612345678", "utrecht-desk"),  # exact number written nationally in the YAML
        ("+31505550100", "no-pin"),
    ],
    ids=[
        "exact-beats-block",
        "longest-block",
        "short-block",
        "national",
        "national-spaces",
        "double-zero",
        "mobile",
        "other-exact",
    ],
)
def test_identify(callers, number, caller_id):
    """identify picks an exact number first, then the longest number block."""
    caller = identify(callers, number)
    assert caller is not None
    assert caller.id == caller_id


@pytest.mark.parametrize(
    "number",
    ["+31201234567", "+442071234567", "anonymous", "", "+", "12", None, "+31 30", "0000"],
    ids=[
        "unknown-nl",
        "unknown-uk",
        "anonymous",
        "empty",
        "plus",
        "short",
        "none",
        "too-short",
        "zeros",
    ],
)
def test_identify_unknown_or_garbage_is_none(callers, number):
    """An unknown number or garbage from the network identifies nobody."""
    assert identify(callers, number) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0302860000", "+31302860000"),
        ("030-286 0000", "+31302860000"),
        (" +31 6 1234 5678 ", "+31612345678"),
        ("anonymous", None),
        ("", None),
        (None, None),
        ("+", None),
        ("12", None),
    ],
)
def test_normalise_number(raw, expected):
    """normalise_number gives E.164 for valid Dutch or international numbers, else None."""
    assert normalise_number(raw) == expected


def test_identify_on_shipped_directory(shipped):
    """The shipped directory knows Utrecht's mobile number and Amsterdam's block."""
    assert identify(shipped, "06 12345678").id == "utrecht"
    assert identify(shipped, "+31205551234").id == "amsterdam"


# --------------------------------------------------------------------------- check_pin


def test_check_pin_right_code_and_pin(callers):
    """The right code with its PIN gives the caller organisation."""
    caller = check_pin(callers, "0344", "2222")
    assert caller is not None and caller.id == "utrecht"


@pytest.mark.parametrize(
    ("code", "pin"),
    [
        ("0344", "2223"),  # wrong PIN
        ("0344", ""),  # no PIN
        ("0344", "4321"),  # PIN of another organisation
        ("0345", "2222"),  # code of that other organisation, this PIN
        ("1234", "2222"),  # unknown code
        ("", "2222"),  # no code
        ("0999", "2222"),  # caller without pin_hash
        ("0999", "not-a-pin"),  # the internal dummy PIN does not open a caller without hash
    ],
    ids=[
        "wrong-pin",
        "empty-pin",
        "other-orgs-pin",
        "other-code",
        "unknown-code",
        "empty-code",
        "no-pin-hash",
        "dummy-pin",
    ],
)
def test_check_pin_rejects(callers, code, pin):
    """Any mismatch of code and PIN, or a caller without a PIN, gives None."""
    assert check_pin(callers, code, pin) is None


def test_check_pin_second_caller(callers):
    """Each caller's PIN opens only its own code."""
    caller = check_pin(callers, "0345", "4321")
    assert caller is not None and caller.id == "utrecht-desk"


def test_shipped_demo_pin(shipped):
    """The shipped directory accepts the documented demo PIN for Utrecht."""
    caller = check_pin(shipped, "0344", "2222")
    assert caller is not None and caller.id == "utrecht"


def test_hash_pin_is_salted_argon2():
    """hash_pin makes an argon2 hash, different each time for the same PIN."""
    a, b = hash_pin("1234"), hash_pin("1234")
    assert a.startswith("$argon2") and b.startswith("$argon2")
    assert a != b


# --------------------------------------------------------------------------- resolve_digits


@pytest.mark.parametrize(
    ("digits", "org_id", "line_id"),
    [
        ("1", "toeslagen", None),  # two lines: ask the topic
        ("5", "cak", "cak-eigen-bijdrage"),  # one line: chosen at once
        ("6", "cjib", None),
        ("12", "toeslagen", "belasting-betalingsregeling"),
        ("31", "svb", "svb-aow"),
        ("89", "gemeente-utrecht", "utrecht-crisis"),
        (" 72 ", "ind", "ind-naturalisatie"),
    ],
)
def test_resolve_digits(shipped, digits, org_id, line_id):
    """One key selects an organisation (and its only line), two keys select a line."""
    choice = resolve_digits(shipped, digits)
    assert choice is not None
    assert choice.organisation.id == org_id
    assert (choice.line.id if choice.line else None) == line_id


@pytest.mark.parametrize(
    "digits",
    ["9", "0", "13", "83", "123", "*#", "*", "1#", "", "a", "１"],
    ids=[
        "unknown-org",
        "zero",
        "unknown-line",
        "unknown-line-8",
        "three-keys",
        "star-hash",
        "star",
        "key-hash",
        "empty",
        "letter",
        "fullwidth-one",
    ],
)
def test_resolve_digits_unknown_is_none(shipped, digits):
    """Unknown keys, three keys and non-digits give None."""
    assert resolve_digits(shipped, digits) is None


@pytest.mark.parametrize(
    ("org_id", "digits", "line_id"),
    [
        ("svb", "1", "svb-aow"),
        ("svb", "2", "svb-kinderbijslag"),
        ("gemeente-utrecht", "9", "utrecht-crisis"),
        ("svb", "3", None),
        ("svb", "12", None),
        ("svb", "#", None),
    ],
)
def test_resolve_digits_in_topic_menu(shipped, org_id, digits, line_id):
    """In an organisation's topic menu one key selects its line; anything else gives None."""
    org = shipped.organisation(org_id)
    choice = resolve_digits(shipped, digits, organisation=org)
    if line_id is None:
        assert choice is None
    else:
        assert choice == Choice(org, shipped.line(line_id))


# --------------------------------------------------------------------------- resolve_speech


@pytest.mark.parametrize(
    ("speech", "org_id", "line_id"),
    [
        ("toeslagen", "toeslagen", "toeslagen-algemeen"),
        ("de SVB over de AOW", "svb", "svb-aow"),
        ("S V B", "svb", None),
        ("S.V.B.", "svb", None),
        ("ik bel over studiefinanciering", "duo", "duo-studiefinanciering"),
        ("verblijfsvergunning", "ind", "ind-verblijf"),
        ("Verblijfsvergunning!", "ind", "ind-verblijf"),
        ("huurtoeslag", "toeslagen", "toeslagen-algemeen"),
        ("het U W V", "uwv", None),
        ("ik bel over de WW", "uwv", "uwv-ww"),
        ("kinderbijslag", "svb", "svb-kinderbijslag"),
        ("CAK", "cak", "cak-eigen-bijdrage"),
    ],
)
def test_resolve_speech(shipped, speech, org_id, line_id):
    """Dutch phrases select the organisation, and the line when a topic or keyword is named."""
    choice = resolve_speech(shipped, speech)
    assert choice is not None
    assert choice.organisation.id == org_id
    assert (choice.line.id if choice.line else None) == line_id


@pytest.mark.parametrize(
    "speech",
    ["blub blab blob", "", "   ", None, "de", "eh"],
    ids=["gibberish", "empty", "spaces", "none", "article", "hesitation"],
)
def test_resolve_speech_unclear_is_none(shipped, speech):
    """Gibberish or nothing said gives None, so the menu asks again."""
    assert resolve_speech(shipped, speech) is None


def test_resolve_speech_in_topic_menu_only_looks_at_that_organisation(shipped):
    """In a topic menu a keyword of another organisation's line is not matched."""
    svb = shipped.organisation("svb")
    assert resolve_speech(shipped, "pensioen", organisation=svb) == Choice(
        svb, shipped.line("svb-aow")
    )
    assert resolve_speech(shipped, "studiefinanciering", organisation=svb) is None


# --------------------------------------------------------------------------- menu.choose


@pytest.mark.parametrize(
    ("tries", "expected"),
    [
        (0, menu.AskAgain(1, read_full_list=False)),
        (1, menu.AskAgain(2, read_full_list=True)),
        (2, menu.GiveUp()),
    ],
    ids=["first-unclear", "second-unclear", "third-unclear"],
)
def test_choose_unclear_answers(shipped, tries, expected):
    """Unclear answers ask again, the third prompt reads the full list, the third miss gives up."""
    assert menu.choose(shipped, None, "blub blab", tries) == expected


@pytest.mark.parametrize(
    ("digits", "speech"),
    [("9", None), (None, "blub"), (None, None), ("", ""), ("123", None)],
    ids=["unknown-digit", "gibberish", "timeout", "empty-strings", "three-keys"],
)
def test_choose_any_unclear_input_asks_again(shipped, digits, speech):
    """Unknown keys, gibberish and silence all count as one unclear answer."""
    assert menu.choose(shipped, digits, speech, 0) == menu.AskAgain(1, read_full_list=False)


def test_choose_conversation_gives_up_after_three_unclear_answers(shipped):
    """Feeding `tries` back, the menu is heard three times, the last with the full list."""
    prompts = [("short", 0)]
    tries = 0
    while True:
        step = menu.choose(shipped, None, "blub", tries)
        if isinstance(step, menu.GiveUp):
            break
        tries = step.tries
        prompts.append(("full" if step.read_full_list else "short", tries))
    assert prompts == [("short", 0), ("short", 1), ("full", 2)]
    assert len(prompts) == menu.MENU_TRIES


def test_choose_one_key_asks_topic(shipped):
    """One key for an organisation with several lines asks the topic."""
    assert menu.choose(shipped, "3", None, 0) == menu.AskTopic(shipped.organisation("svb"))


@pytest.mark.parametrize(
    ("digits", "speech", "line_id", "how"),
    [
        ("31", None, "svb-aow", "digits"),
        ("5", None, "cak-eigen-bijdrage", "digits"),
        (None, "de SVB over de AOW", "svb-aow", "speech"),
        ("32", "de SVB over de AOW", "svb-kinderbijslag", "digits"),
    ],
    ids=["two-keys", "single-line-org", "speech", "digits-win-over-speech"],
)
def test_choose_line(shipped, digits, speech, line_id, how):
    """A chosen line is returned with how it was selected; keys win over speech."""
    line = shipped.line(line_id)
    step = menu.choose(shipped, digits, speech, 1)
    assert step == menu.LineChosen(shipped.organisation(line.organisation_id), line, how)


def test_choose_in_topic_menu(shipped):
    """In the topic menu one key selects the organisation's line."""
    svb = shipped.organisation("svb")
    assert menu.choose(shipped, "2", None, 0, organisation=svb) == menu.LineChosen(
        svb, shipped.line("svb-kinderbijslag"), "digits"
    )


def test_choose_in_topic_menu_unclear_asks_again(shipped):
    """In the topic menu an unknown key asks again, and the third miss gives up."""
    svb = shipped.organisation("svb")
    assert menu.choose(shipped, "7", None, 0, organisation=svb) == menu.AskAgain(1, False)
    assert menu.choose(shipped, "7", None, 2, organisation=svb) == menu.GiveUp()


@pytest.mark.parametrize(
    "speech", ["blub blab", "studiefinanciering"], ids=["gibberish", "other-organisations-topic"]
)
def test_choose_in_topic_menu_unclear_speech_counts_as_a_miss(shipped, speech):
    """In the topic menu, speech naming no topic of that organisation counts as unclear."""
    svb = shipped.organisation("svb")
    assert menu.choose(shipped, None, speech, 0, organisation=svb) == menu.AskAgain(1, False)
    assert menu.choose(shipped, None, speech, 2, organisation=svb) == menu.GiveUp()


# --------------------------------------------------------------------------- parse_options


@pytest.mark.parametrize(
    ("digits", "urgent", "level"),
    [
        ("", False, "none"),
        (None, False, "none"),
        ("1", False, "case"),
        ("2", False, "contact"),
        ("9", True, "none"),
        ("19", True, "case"),
        ("91", True, "case"),
        ("29", True, "contact"),
        ("12", False, "contact"),
        ("5", False, "none"),
        ("#", False, "none"),
    ],
)
def test_parse_options(digits, urgent, level):
    """No key shares nothing beyond the topic; 1 the case, 2 also direct contact; 9 urgent."""
    opts = menu.parse_options(digits)
    assert (opts.urgent, opts.consent_level, opts.consent) == (urgent, level, level != "none")
    assert not (opts.skip or opts.stop or opts.repeat)


def test_chain_keys_in_the_options():
    """7 skips a chain's step, 0 stops the chain, * repeats the reference."""
    assert menu.parse_options("7").skip and menu.parse_options("0").stop
    assert menu.parse_options("*").repeat
    assert menu.capped_consent("contact", withdrawn=True) == "none"
    assert menu.capped_consent("case", withdrawn=False) == "case"
