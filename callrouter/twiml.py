"""The one place that builds TwiML, with the twilio SDK's `VoiceResponse`."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from twilio.twiml.voice_response import VoiceResponse

from callrouter.flows.speech import sentences

LANGUAGE = "nl-NL"
EMPTY = str(VoiceResponse())  # an empty document: Twilio does nothing more
VOICE = "Polly.Ruben"


def slot(name: str) -> str:
    """A mark for a value that changes per request, in a document built once (`prepare`)."""
    return f"@@slot:{name}@@"


_SLOT = re.compile(r"@@slot:(\w+)@@")


def prepare(document: str) -> tuple[str, ...]:
    """A document built by the SDK with `slot` marks, cut at them: text, name, text, ..."""
    return tuple(_SLOT.split(document))


def fill(prepared: tuple[str, ...], values: dict[str, str]) -> str:
    """The prepared document with each slot's value, escaped for text and attributes alike
    (what the SDK would have written, up to the escaping of quotes in text)."""
    out = [prepared[0]]
    for i in range(1, len(prepared), 2):
        # Capitals as `Renderer` gives them: the value may begin a sentence of a Say.
        starts = prepared[i - 1].endswith((">", ". ", "? ", "! "))
        value = sentences(values[prepared[i]], starts)
        out.append(escape(value, {'"': "&quot;"}))
        out.append(prepared[i + 1])
    return "".join(out)


class Renderer:
    """TwiML in the directory's language and voice; `url` turns a path into a public URL."""

    def __init__(self, url, language: str = LANGUAGE, voice: str = VOICE):
        self.url = url
        self.language = language
        self.voice = voice

    def _say(self, node, text: str, loop: int | None = None) -> None:
        kwargs: dict[str, object] = {"language": self.language, "voice": self.voice}
        if loop is not None:
            kwargs["loop"] = loop
        node.say(sentences(text), **kwargs)

    def say(self, *texts: str, hangup: bool = False, redirect: str | None = None) -> str:
        r = VoiceResponse()
        for text in texts:
            if text:
                self._say(r, text)
        if redirect:
            r.redirect(self.url(redirect), method="POST")
        if hangup:
            r.hangup()
        return str(r)

    def ask(
        self,
        action: str,
        *texts: str,
        speech: bool = False,
        hints: str | None = None,
        num_digits: int | None = 1,
        timeout: int = 5,
        finish_on_key: str | None = None,
        after: str | None = None,
    ) -> str:
        """A `<Gather>` that always calls `action`, also when nothing was entered."""
        r = VoiceResponse()
        kwargs = {
            "action": self.url(action),
            "method": "POST",
            "timeout": timeout,
            "action_on_empty_result": True,
            "language": self.language,
            "input": "dtmf speech" if speech else "dtmf",
        }
        if num_digits:
            kwargs["num_digits"] = num_digits
        if finish_on_key is not None:
            kwargs["finish_on_key"] = finish_on_key
        if speech:
            kwargs["speech_timeout"] = "auto"
            if hints:
                kwargs["hints"] = hints
        g = r.gather(**kwargs)
        for text in texts:
            if text:
                self._say(g, text)
        # Reached only if a provider lets the Gather fall through instead of calling `action`.
        if after:
            r.redirect(self.url(after), method="POST")
        return str(r)

    def conference(
        self,
        name: str,
        *,
        intro: str | None,
        action: str,
        wait_url: str | None,
        status_callback: str,
        start_on_enter: bool,
        end_on_exit: bool,
        hangup_on_star: bool,
        label: str,
    ) -> str:
        r = VoiceResponse()
        if intro:
            self._say(r, intro)
        dial_kwargs = {"action": self.url(action), "method": "POST"}
        if hangup_on_star:
            dial_kwargs["hangup_on_star"] = True
        dial = r.dial(**dial_kwargs)
        conf_kwargs = {
            "start_conference_on_enter": start_on_enter,
            "end_conference_on_exit": end_on_exit,
            "beep": "false",
            "status_callback": self.url(status_callback),
            "status_callback_method": "POST",
            # A list would be written literally as "['a', 'b']": Twilio wants spaces.
            "status_callback_event": "start end join leave",
            "participant_label": label,
        }
        if wait_url:
            # POST: with GET, Twilio's parameters (the caller's number among them) would travel
            # in the query string, into every access log on the way.
            conf_kwargs.update(wait_url=self.url(wait_url), wait_method="POST")
        dial.conference(name, **conf_kwargs)
        return str(r)

    def hold_loop(self, text: str, again: str) -> str:
        """Wait audio: the message, a pause, then fetch this same TwiML again (POST, as every
        fetch of the service's TwiML: no number in a query string)."""
        r = VoiceResponse()
        self._say(r, text)
        r.pause(length=8)
        r.redirect(self.url(again), method="POST")
        return str(r)
