"""The service's request class: Flask's, with URL-encoded forms read in one step.

Every Twilio webhook is a small `application/x-www-form-urlencoded` POST with a
`Content-Length`. Werkzeug parses such a body with `urllib.parse.parse_qsl`, but first builds
a form parser, a limited stream and the parsed content type, which together cost four times
the parsing itself (bench/stages.py). For exactly that case this class reads the declared
length and parses it the same way, with the same limits and the same result; anything else
(multipart, chunked, no length) goes to Werkzeug's own parser.
"""

from __future__ import annotations

from io import BytesIO
from urllib.parse import parse_qsl

import flask
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

URLENCODED = "application/x-www-form-urlencoded"


class Request(flask.Request):
    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        environ = self.environ
        ctype = environ.get("CONTENT_TYPE", "")
        length = environ.get("CONTENT_LENGTH", "")
        urlencoded = ctype == URLENCODED or (ctype.partition(";")[0].strip().lower() == URLENCODED)
        if not urlencoded or not length.isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
            super()._load_form_data()
            return
        size = int(length)
        limit = self.max_content_length
        if limit is not None and size > limit:
            raise RequestEntityTooLarge()
        body = environ["wsgi.input"].read(size) if size else b""
        if len(body) < size:
            raise ClientDisconnected()
        try:
            text = body.decode()
        except UnicodeDecodeError:
            # Werkzeug's parser gives an empty form for a body that is no UTF-8.
            items: list[tuple[str, str]] = []
        else:
            items = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
        d = self.__dict__
        d["stream"] = BytesIO()  # consumed, as after Werkzeug's parser
        d["form"] = ImmutableMultiDict(items)
        d["files"] = ImmutableMultiDict()
