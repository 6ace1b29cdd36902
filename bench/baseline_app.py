"""The baseline of the webhook benchmark: a minimal Flask app answering fixed TwiML."""

from flask import Flask, Response

app = Flask(__name__)
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/x" input="dtmf speech" '
    'language="nl-NL"><Say language="nl-NL">Welkom</Say></Gather></Response>'
)


@app.post("/voice/incoming")
@app.post("/voice/menu")
@app.post("/voice/status/call")
@app.post("/voice/status/conference")
def fixed():
    return Response(TWIML, mimetype="text/xml")
