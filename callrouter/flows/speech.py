"""What callers hear: every Dutch sentence of the service, and how times and numbers are spoken.

Pure text; the web layer puts it in `<Say language="nl-NL">`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import phonenumbers

from callrouter.directory import Caller, Directory, LifeEvent, Line, Organisation
from callrouter.flows.reference import spoken as spoken_reference

MONTHS = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)
WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
_SENTENCE_START = re.compile(r"(^|[.?!]\s+)([a-zà-ÿ])")
_INNER_START = re.compile(r"([.?!]\s+)([a-zà-ÿ])")


def sentences(text: str, starts: bool = True) -> str:
    """Every sentence begins with a capital, also one that starts with a spoken name such as
    "de S V B" or "het U W V" (what a person reading the transcript, or a voice, expects).
    `starts=False`: a piece in the middle of a sentence, whose first letter stays."""
    pattern = _SENTENCE_START if starts else _INNER_START
    return pattern.sub(lambda m: m.group(1) + m.group(2).upper(), text)


def clock(moment: datetime) -> str:
    """`8 uur 30`, `13 uur`: how a speaking clock says a time."""
    if moment.minute:
        return f"{moment.hour} uur {moment.minute:02d}"
    return f"{moment.hour} uur"


def when(moment: datetime, now: datetime) -> str:
    """A future instant in words, relative to now, both in the directory's time zone."""
    moment_local = moment.astimezone(now.tzinfo)
    day = moment_local.date()
    today = now.date()
    if day == today:
        return f"vandaag om {clock(moment_local)}"
    if day == today + timedelta(days=1):
        return f"morgen om {clock(moment_local)}"
    text = f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"
    if day - today > timedelta(days=300):
        text += f" {day.year}"
    return f"{text} om {clock(moment_local)}"


def spell_number(number: str | None) -> str:
    """A phone number as Dutch text-to-speech should read it: digits in groups."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, "NL")
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        national = number
    groups = [g for g in national.replace("-", " ").split() if g]
    return ", ".join(" ".join(g) for g in groups)


# --------------------------------------------------------------------------- intake


def welcome(caller: Caller) -> str:
    return f"Welkom bij de professionallijn. U belt namens {caller.spoken_name}."


ASK_CODE = (
    "Welkom bij de professionallijn. Uw nummer is niet bekend. "
    "Toets de code van uw organisatie, gevolgd door een hekje."
)
ASK_PIN = "Toets nu de pincode van uw organisatie, gevolgd door een hekje."
WRONG_PIN = "Die combinatie van code en pincode klopt niet. Probeer het opnieuw."
LOCKED = (
    "Het is niet gelukt om u te herkennen. Om veiligheidsredenen kunt u vanaf dit nummer "
    "een kwartier niet inloggen. Probeer het later opnieuw, of bel vanaf een geregistreerd "
    "toestel. Tot ziens."
)
UNAVAILABLE = (
    "De professionallijn is tijdelijk niet bereikbaar vanaf dit nummer. "
    "Probeer het over enkele minuten opnieuw. Tot ziens."
)


# --------------------------------------------------------------------------- menu

MENU_SHORT = (
    "Kies de organisatie met één toets, of de lijn direct met twee toetsen. "
    "U kunt ook zeggen welke organisatie en welk onderwerp u zoekt."
)
NOT_UNDERSTOOD = "Dat heb ik niet goed begrepen."
MENU_GIVE_UP = (
    "Het lukt helaas niet om uw keuze te herkennen. Bel gerust opnieuw, "
    "dan proberen we het nog een keer. Tot ziens."
)


def menu_full(directory: Directory) -> str:
    parts = [f"Voor {o.spoken_name}, toets {o.digit}." for o in directory.organisations]
    return "Dit zijn de organisaties. " + " ".join(parts)


def topic_menu(org: Organisation) -> str:
    parts = [f"Voor {ln.spoken_topic}, toets {ln.digit}." for ln in org.lines]
    return f"{org.spoken_name}. Kies het onderwerp. " + " ".join(parts)


CONSENT_KEYS = (
    "Toets 1 als de inwoner toestemming geeft om de zaak te bespreken, of 2 als "
    "de organisatie de inwoner ook zelf mag benaderen. Zonder toets wordt alleen het "
    "onderwerp gedeeld."
)


def case_opened(reference: str) -> str:
    return f"Uw zaaknummer is {spoken_reference(reference)}."


def options(
    org: Organisation, line: Line, reference: str | None = None, withdrawn: bool = False
) -> str:
    return options_with(org, line, case_opened(reference) if reference else "", withdrawn)


def options_with(org: Organisation, line: Line, opened: str, withdrawn: bool) -> str:
    """`options`, with the sentence about the new case (or "") given as it is spoken."""
    text = f"U wordt verbonden met {org.spoken_name} over {line.spoken_topic}. "
    if opened:
        text += opened + " "
    if withdrawn:
        text += WITHDRAWN + " "
    return (
        text + CONSENT_KEYS + " Toets 9 als het spoed heeft. "
        "Of wacht even, dan verbinden we direct door."
    )


WITHDRAWN = (
    "Let op: de inwoner heeft de toestemming voor deze organisatie op deze zaak "
    "ingetrokken; er wordt alleen het onderwerp gedeeld."
)

_COUNT = ("geen", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen", "tien")


def count(n: int) -> str:
    return _COUNT[n] if 0 <= n < len(_COUNT) else str(n)


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " en " + names[-1]


def life_event_menu(directory: Directory) -> str:
    parts = [f"Voor {e.spoken_name}, toets {e.digit}." for e in directory.life_events if e.digit]
    return "Levensgebeurtenissen. " + " ".join(parts) + " U kunt de gebeurtenis ook zeggen."


def life_event_route(directory: Directory, event: LifeEvent, reference: str) -> str:
    orgs: list[str] = []
    for step in event.steps:
        line = directory.line(step.line_id)
        org = directory.organisation(line.organisation_id) if line else None
        if org is not None:
            orgs.append(org.spoken_name)
    n = len(event.steps)
    return (
        f"{event.spoken_name}. {case_opened(reference)} U wordt achter elkaar "
        f"doorverbonden met {count(n)} {'organisatie' if n == 1 else 'organisaties'}: "
        f"{_listing(orgs)}."
    )


def step_options(
    position: int,
    total: int,
    org: Organisation,
    line: Line,
    reason: str | None,
    withdrawn: bool = False,
) -> str:
    text = f"Stap {position + 1} van {total}: {org.spoken_name} over {line.spoken_topic}. "
    if withdrawn:
        text += WITHDRAWN + " "
    return (
        text + CONSENT_KEYS + " Toets 9 als het spoed heeft, 7 om deze stap over te slaan, "
        "of 0 om te stoppen. Of wacht even, dan verbinden we direct door."
    )


def step_unreachable(
    position: int, org: Organisation, closed: bool, planned: datetime | None, now: datetime
) -> str:
    why = "is nu gesloten" if closed else "is niet bereikt"
    text = f"Stap {position + 1}, {org.spoken_name}, {why}."
    if planned is not None:
        text += f" Er is een terugbelverzoek op de zaak gemaakt vanaf {when(planned, now)}."
    else:
        text += " Een terugbelverzoek was niet mogelijk."
    return text


def step_skipped(position: int) -> str:
    return f"Stap {position + 1} is overgeslagen."


CHAIN_DONE = "Dat was de laatste stap van deze levensgebeurtenis."
CHAIN_STOPPED = "De overige stappen zijn gestopt."


def connecting(org: Organisation, urgent: bool, consent: bool | str) -> str:
    how = "met spoed " if urgent else ""
    text = f"Een ogenblik, u wordt {how}doorverbonden met {org.spoken_name}."
    if consent in (True, "case", "contact"):
        text += " De toestemming van de inwoner is genoteerd."
    return text


HOLD = "U wordt zo doorverbonden met een professional. Een ogenblik geduld alstublieft."
HOLD_FOR_WORKER = (
    "U wordt zo doorverbonden met de medewerker van de gemeente. Een ogenblik geduld alstublieft."
)
PROFESSIONAL_HOLD = "Een ogenblik, de medewerker van de gemeente is zo weer terug."


# --------------------------------------------------------------------------- closed and callbacks


def closed(
    org: Organisation, line: Line, opens: datetime | None, now: datetime, reason: str
) -> str:
    if reason == "holiday":
        why = "is vandaag vanwege een feestdag gesloten"
    elif reason == "closure":
        why = "is vandaag gesloten"
    else:
        why = "is nu gesloten"
    text = f"De lijn van {org.spoken_name} over {line.spoken_topic} {why}."
    if opens is not None:
        text += f" De lijn is weer open {when(opens, now)}."
    return text


def unanswered(org: Organisation) -> str:
    return f"Het is helaas niet gelukt om iemand van {org.spoken_name} te bereiken."


CALLBACK_NEVER = (
    "Terugbellen is voor deze lijn niet mogelijk: de lijn is niet open op tijden "
    "waarop wij u kunnen bereiken. Toets 2 om een andere organisatie te kiezen. "
    "Of hang op."
)
OTHER_ORGANISATION = "Toets 2 om een andere organisatie te kiezen. Of hang op."
CALLBACK_OFFER = (
    "Toets 1 als u teruggebeld wilt worden zodra de lijn open is. "
    "Toets 2 om een andere organisatie te kiezen. Of hang op."
)


def callback_planned(planned: datetime | None, now: datetime) -> str:
    if planned is None:
        return "Uw terugbelverzoek is genoteerd. U wordt zo snel mogelijk teruggebeld. Tot ziens."
    return (
        f"Uw terugbelverzoek is genoteerd. U wordt teruggebeld vanaf {when(planned, now)}. "
        "Tot ziens."
    )


GOODBYE = "Dank u wel voor het bellen. Tot ziens."


def callback_updated(planned: datetime | None, now: datetime) -> str:
    text = (
        "U had al een terugbelverzoek voor deze lijn. Dat verzoek is bijgewerkt en houdt "
        "zijn plaats in de rij"
    )
    if planned is not None:
        text += f"; u wordt teruggebeld vanaf {when(planned, now)}"
    return text + ". Tot ziens."


CALLBACK_NO_NUMBER = (
    "Uw nummer is afgeschermd, dus wij kunnen u niet terugbellen. "
    "Bel gerust later opnieuw. Tot ziens."
)
CALLBACK_IMPOSSIBLE = (
    "Deze lijn heeft geen openingstijden waarop wij kunnen terugbellen. "
    "Kies een andere organisatie of probeer het later opnieuw. Tot ziens."
)


def pending_callback(org_name: str, topic: str, planned: datetime | None, now: datetime) -> str:
    text = f"U heeft een terugbelverzoek openstaan voor {org_name} over {topic}"
    if planned is not None:
        text += f", gepland {when(planned, now)}"
    return text + ". Toets sterretje om het te annuleren, of kies een organisatie."


CALLBACK_CANCELLED = "Uw terugbelverzoek is geannuleerd."
CALLBACK_WORKER_UNREACHABLE = (
    "De medewerker van de gemeente neemt helaas niet op. We proberen het later opnieuw. Dank u wel."
)
CALLBACK_CALLING_WORKER = "De medewerker wordt nu gebeld. Een ogenblik alstublieft."


# --------------------------------------------------------------------------- whisper and hand-over

ACCEPT_KEYS = "Toets 1 om het gesprek aan te nemen, 2 om dit opnieuw te horen, of 3 om te weigeren."
CONSENT_WHISPER = {
    "none": "De inwoner heeft geen toestemming gegeven om de zaak te delen; alleen het "
    "onderwerp is bekend. ",
    "case": "De inwoner geeft toestemming om de zaak te bespreken. ",
    "contact": "De inwoner geeft toestemming om de zaak te bespreken en om zelf contact met de "
    "inwoner op te nemen. ",
}


def whisper(
    caller_name: str,
    org: Organisation,
    line: Line,
    urgent: bool,
    consent: bool | str,
    reference: str | None = None,
    step: tuple[int, int, str, str | None] | None = None,
) -> str:
    """What the professional hears before accepting. `step`: (position, total, life event's
    spoken name, reason) for a step of a chain."""
    level = consent if isinstance(consent, str) else ("case" if consent else "none")
    text = f"Professionallijn. {caller_name} belt voor {org.spoken_name} over {line.spoken_topic}. "
    if reference:
        text += f"Zaak {spoken_reference(reference)}. "
    if step is not None:
        position, total, event_name, reason = step
        text += f"Stap {position + 1} van {total}, levensgebeurtenis: {event_name}. "
        if reason:
            text += f"{reason}. "
    return (
        text
        + ("Dit gesprek heeft spoed. " if urgent else "Geen spoed. ")
        + CONSENT_WHISPER.get(level, CONSENT_WHISPER["none"])
        + ACCEPT_KEYS
    )


WHISPER_GONE = "Deze doorverbinding is niet meer nodig. De beller heeft al opgehangen. Dank u wel."
WHISPER_TAKEN = "Dit gesprek is al door een collega aangenomen. Dank u wel."
WHISPER_DECLINED = "U heeft het gesprek geweigerd. Dank u wel."
ACCEPTED = "U wordt nu verbonden."

HANDOVER_MENU = (
    "Toets 1 om de inwoner aan het gesprek toe te voegen. "
    "Toets 2 om het gesprek over te dragen en zelf op te hangen. "
    "Toets 3 om terug te gaan naar het gesprek."
)
HANDOVER_NEXT = " Toets 4 voor de volgende organisatie van de levensgebeurtenis."
ASK_CITIZEN = "Toets het telefoonnummer van de inwoner, gevolgd door een hekje."
CITIZEN_INVALID = "Dat is geen geldig telefoonnummer."
CITIZEN_CALLING = (
    "De inwoner wordt gebeld en komt zo in het gesprek. U gaat terug naar het gesprek."
)
WORKER_LEFT = "De medewerker van de gemeente heeft het gesprek beëindigd. Dank u wel, tot ziens."
CITIZEN_LEFT = "De inwoner heeft het gesprek beëindigd. Dank u wel, tot ziens."
PROFESSIONAL_LEFT = "De professional heeft het gesprek beëindigd. Dank u wel, tot ziens."
HANDED_OVER = "U heeft het gesprek overgedragen. Dank u wel, tot ziens."
HANDED_OVER_NEXT = "U heeft het gesprek overgedragen."
ENDED_ALONE_SHORT = "Het gesprek is beëindigd."
RESULT_QUESTION = (
    "Hoe is het gegaan? Toets 1 als de vraag is opgelost, 2 als het deels is "
    "opgelost of er vervolg nodig is, 3 als het niet is opgelost, of 4 als het "
    "de verkeerde lijn was."
)
RIGHT_ORGANISATION = (
    "Welke organisatie had het moeten zijn? Zeg de naam, of toets de "
    "organisatie of de lijncode. Toets hekje om over te slaan."
)
RESULT_THANKS = "Dank u wel, dat helpt het netwerk."
ENDED_ALONE = "Er is nog niemand anders in het gesprek, dus het gesprek wordt beëindigd. Tot ziens."
RETURNING = "U gaat terug naar het gesprek."
TRANSFER_ABORTED = "De doorverbinding is afgebroken. U gaat terug naar het keuzemenu."
CONVERSATION_ENDED = "Het gesprek is beëindigd."
NEW_TRANSFER = "Toets 1 voor een nieuwe doorverbinding, of hang op."


# --------------------------------------------------------------------------- the way back


def staff_welcome(org: Organisation) -> str:
    return (
        f"Welkom bij de professionallijn. U belt namens {org.spoken_name}. "
        "Toets het zaaknummer van zeven cijfers."
    )


REFERENCE_INVALID = "Dat zaaknummer klopt niet. Toets het zaaknummer opnieuw."
UNKNOWN_CASE = "Deze zaak is bij ons niet bekend. Controleer het zaaknummer. Tot ziens."
CALLING_WORKER = (
    "U wordt verbonden met de medewerker van de gemeente die de zaak heeft "
    "geopend. Een ogenblik geduld alstublieft."
)


def worker_whisper(org: Organisation, reference: str) -> str:
    return (
        f"Professionallijn. {org.spoken_name} belt over zaak {spoken_reference(reference)}. "
        + ACCEPT_KEYS
    )


def worker_unreachable(planned: datetime | None, now: datetime) -> str:
    text = "De medewerker van de gemeente is nu niet bereikbaar."
    if planned is not None:
        text += (
            f" Er is een terugbelverzoek gemaakt: u wordt vanaf {when(planned, now)} "
            "gebeld en daarna verbonden met de medewerker."
        )
    return text + " Tot ziens."


# --------------------------------------------------------------------------- errors

ERROR = (
    "Excuses, er ging iets mis aan onze kant. Toets 1 om het opnieuw te proberen, "
    "of hang op en bel zo nog eens."
)


def fallback(org: Organisation | None) -> str:
    text = (
        "Excuses, de professionallijn heeft op dit moment een storing. "
        "Probeer het over enkele minuten opnieuw."
    )
    if org is not None and org.public_number:
        text += (
            f" U kunt {org.spoken_name} ook bereiken via het publieke nummer "
            f"{spell_number(org.public_number)}."
        )
    return text + " Tot ziens."
