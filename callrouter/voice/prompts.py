"""TwiML documents that several conversations lead to: the menus, the conferences, the prompts."""

from __future__ import annotations

from callrouter import services
from callrouter.flows import reference as refs
from callrouter.flows import routing, speech
from callrouter.voice.webhook import renderer


def menu_prompt(tries: int, intro: str | None = None, full: bool = False) -> str:
    svc = services.current()
    key = ("menu", tries, intro, full)
    cached = svc.rendered.get(key)
    if cached is None:  # the directory is fixed for the process's life, so is this TwiML
        body = speech.menu_full(svc.directory) if full else speech.MENU_SHORT
        cached = renderer().ask(
            f"/voice/menu?try={tries}",
            intro or "",
            body,
            speech=True,
            hints=routing.speech_hints(svc.directory),
            num_digits=2,
            timeout=5,
        )
        if len(svc.rendered) < 10_000:
            svc.rendered[key] = cached
    return cached


def topic_prompt(org, tries: int) -> str:
    svc = services.current()
    return renderer().ask(
        f"/voice/topic?org={org.id}&try={tries}",
        speech.NOT_UNDERSTOOD if tries else "",
        speech.topic_menu(org),
        speech=True,
        hints=routing.speech_hints(svc.directory, org),
        num_digits=1,
        timeout=5,
    )


def event_prompt(tries: int, intro: str = "") -> str:
    svc = services.current()
    return renderer().ask(
        f"/voice/event?try={tries}",
        intro,
        speech.life_event_menu(svc.directory),
        speech=True,
        hints=routing.speech_hints(svc.directory),
        num_digits=1,
        timeout=5,
    )


def worker_conference(
    tr_id: str, intro: str | None, start_on_enter: bool, reaching: str = "professional"
) -> str:
    """The caller's side of a transfer's conference; `reaching`: whom the caller waits for
    ("worker" on the way back, where a professional calls the worker)."""
    wait = f"/voice/wait?tr={tr_id}" + ("&to=worker" if reaching == "worker" else "")
    return renderer().conference(
        tr_id,
        intro=intro,
        action=f"/voice/conference/done?tr={tr_id}",
        wait_url=wait,
        status_callback=f"/voice/status/conference?tr={tr_id}",
        start_on_enter=start_on_enter,
        end_on_exit=False,
        hangup_on_star=True,
        label="worker",
    )


def professional_conference(tr_id: str) -> str:
    return renderer().conference(
        tr_id,
        intro=speech.ACCEPTED,
        action=f"/voice/professional/done?tr={tr_id}",
        wait_url=None,
        status_callback=f"/voice/status/conference?tr={tr_id}",
        start_on_enter=True,
        end_on_exit=True,
        hangup_on_star=False,
        label="professional",
    )


def ask_code(tries: int, intro: str | None = None) -> str:
    return renderer().ask(
        f"/voice/intake/code?try={tries}",
        intro or "",
        speech.ASK_CODE
        if not intro
        else "Toets de code van uw organisatie, gevolgd door een hekje.",
        num_digits=None,
        finish_on_key="#",
        timeout=8,
    )


def ask_reference(org, tries: int, intro: str = "") -> str:
    return renderer().ask(
        f"/voice/wayback?org={org.id}&try={tries}",
        intro,
        speech.staff_welcome(org) if not intro else "",
        num_digits=refs.LENGTH,
        finish_on_key="#",
        timeout=10,
    )


def ask_citizen(tr_id: str, tries: int, intro: str = "") -> str:
    return renderer().ask(
        f"/voice/citizen?tr={tr_id}&try={tries}",
        intro,
        speech.ASK_CITIZEN,
        num_digits=None,
        finish_on_key="#",
        timeout=10,
    )
