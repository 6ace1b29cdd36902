"""LOG_FORMAT=json: one JSON object per line, with the ids of what was being done."""

from __future__ import annotations

import json
import logging

import pytest
from rq import Queue, SimpleWorker

from callrouter import logs

from conftest import ALL_NUMBERS

FORMATTER = logs.JsonFormatter()


def _record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(
        "callrouter.test", logging.WARNING, __file__, 1, message, args, exc_info
    )


def test_a_line_is_one_json_object():
    try:
        raise ValueError("boom\nwith a second line")
    except ValueError:
        import sys

        record = _record("handled %s of %d", "a call", 3, exc_info=sys.exc_info())
    line = FORMATTER.format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "WARNING" and out["logger"] == "callrouter.test"
    assert out["message"] == "handled a call of 3"
    assert out["time"].endswith("Z") and out["time"][10] == "T"
    assert "ValueError: boom" in out["exception"]


@pytest.mark.parametrize("number", ALL_NUMBERS + ["+44 20 7946 0958", "030-2860777"])
def test_numbers_are_cut_out_of_both_formats(number):
    dutch = number.startswith("+31")
    national = "0" + number[3:] if dutch else number
    spaced = f"({number[:3]} {number[3]} {number[4:]})" if dutch else number
    for text in (f"to {number}.", f"to {national}", spaced):
        record = _record("dialling %s", text)
        assert number not in FORMATTER.format(record)
        assert national not in FORMATTER.format(record)
        assert logs.TextFormatter().format(record).count(logs.REDACTED) == 1, text


@pytest.mark.parametrize(
    "text",
    [
        "0031612345678",
        "POST /voice/%2B31612345678",
        "+31 (0)6 12345678",
        "030 - 286 0777",
        "(030) 2860777",
        "+31.6.12345678",
        "+31\u00a06\u00a012345678",
    ],
)
def test_other_ways_of_writing_a_number_are_cut_out(text):
    assert not any(ch.isdigit() for ch in logs.scrub(text).replace("%2B", "")), logs.scrub(text)


@pytest.mark.parametrize(
    "text",
    [
        "call CA0123456789abcdef0123456789abcdef",
        "transfer 061234567812345678901234567890ab",
        "at 2026-12-07 15:57:57,218",
        "{'calls': 0, 'legs': 12}",
        "took 1796659076.123 s",
        "reference K7Q-2040",
    ],
)
def test_ids_and_times_stay(text):
    assert logs.scrub(text) == text


def test_a_webhooks_line_names_its_request_call_and_transfer(app):
    transfer = "ab" * 16
    with app.test_request_context(
        f"/voice/status/leg?tr={transfer}",
        method="POST",
        data={"CallSid": "CA" + "1" * 32, "From": "+31612345678"},
        headers={"I-Twilio-Idempotency-Token": "idem-123"},
    ):
        out = json.loads(FORMATTER.format(_record("leg %s", "ended")))
        again = json.loads(FORMATTER.format(_record("second line")))
    assert out["request_id"] == "idem-123" == again["request_id"]
    assert out["call_sid"] == "CA" + "1" * 32 and out["transfer"] == transfer
    assert "+31612345678" not in json.dumps(out)
    with app.test_request_context(
        "/voice/incoming?tr=not-an-id",
        method="POST",
        data={"CallSid": "+31612345678"},
        headers={"X-Request-Id": "a b c"},  # not id-shaped: one is made
    ):
        out = json.loads(FORMATTER.format(_record("forged")))
    assert "transfer" not in out and out["call_sid"] == "(not a SID)"
    assert len(out["request_id"]) == 32
    with app.test_request_context("/dashboard/calls"):
        a = json.loads(FORMATTER.format(_record("page")))
    with app.test_request_context("/dashboard/calls"):
        b = json.loads(FORMATTER.format(_record("page")))
    assert a["request_id"] != b["request_id"] and "call_sid" not in a


LINES: list[str] = []


class _Keep(logging.Handler):
    def emit(self, record):
        LINES.append(FORMATTER.format(record))


def job_that_logs() -> str:
    logging.getLogger("callrouter.jobs").warning("a job's line")
    return "done"


def test_a_jobs_line_names_its_job(redis_client):
    handler = _Keep()
    logging.getLogger("callrouter.jobs").addHandler(handler)
    LINES.clear()
    try:
        queue = Queue("logs-test", connection=redis_client)
        job = queue.enqueue(job_that_logs, job_id="log-test-job-1")
        SimpleWorker([queue], connection=redis_client).work(burst=True)
    finally:
        logging.getLogger("callrouter.jobs").removeHandler(handler)
    assert job.get_status(refresh=True) == "finished"
    out = [json.loads(line) for line in LINES]
    assert [(o["job"], o["job_func"]) for o in out] == [
        ("log-test-job-1", "test_logs.job_that_logs")
    ]


def test_json_format_is_chosen_by_the_setting(environ):
    from callrouter.settings import SettingsError, from_env

    assert from_env({**environ, "LOG_FORMAT": "JSON"}).log_format == "json"
    assert from_env(environ).log_format == "text"
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        from_env({**environ, "LOG_FORMAT": "xml"})
    config = logs.gunicorn_config("json")
    assert config["formatters"]["json"]["()"] == "callrouter.logs.JsonFormatter"
    assert logs.gunicorn_config("text") is None
