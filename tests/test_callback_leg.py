"""A call-back attempt's course as pure decisions (the webhooks around it: test_callbacks.py
and the callback-leg shape of test_call_orders.py)."""

from __future__ import annotations

from callrouter.flows import callback_leg as leg

D, C, T = leg.DIALLING, leg.CONNECTING, leg.CONNECTED


def test_the_professional_hears_the_request_only_while_it_is_dialling():
    assert leg.step(D, leg.Answered()) == (D, [leg.Reply("whisper", 1)])
    for state in (C, T, "done", "pending", None):
        assert leg.step(state, leg.Answered()) == (state, [leg.Reply("not-needed")])


def test_accepting_claims_the_attempt_and_calls_the_worker():
    assert leg.step(D, leg.Key("1", 1)) == (
        C,
        [leg.Claim(), leg.Job("dial_worker"), leg.Reply("conference")],
    )


def test_a_repeated_acceptance_is_answered_the_same_way_without_a_second_worker_call():
    for state in (C, T):
        assert leg.step(state, leg.Key("1", 1, repeat=True)) == (state, [leg.Reply("conference")])
    # Another call's key for an attempt taken already is not needed.
    assert leg.step(C, leg.Key("1", 1)) == (C, [leg.Reply("not-needed")])


def test_other_keys_repeat_the_whisper_then_count_as_declined():
    assert leg.step(D, leg.Key("", 1)) == (D, [leg.Reply("whisper", 2)])
    assert leg.step(D, leg.Key("3", 2)) == (D, [leg.Reply("whisper", 3)])
    assert leg.step(D, leg.Key("3", 3)) == (D, [leg.Reply("declined")])


def test_the_professionals_end_decides_by_the_attempts_state():
    assert leg.step(D, leg.ProfessionalStatus("busy")) == (
        D,
        [leg.Job("attempt_failed", "busy")],
    )
    assert leg.step(D, leg.ProfessionalStatus("no-answer"))[1] == [
        leg.Job("attempt_failed", "no-answer")
    ]
    assert leg.step(C, leg.ProfessionalStatus("completed"))[1] == [leg.Job("professional_left")]
    assert leg.step(T, leg.ProfessionalStatus("completed"))[1] == [leg.Job("finished", "connected")]
    for status in ("ringing", "in-progress"):  # not an end
        assert leg.step(D, leg.ProfessionalStatus(status)) == (D, [])
    assert leg.step("done", leg.ProfessionalStatus("completed")) == ("done", [])  # absorbed


def test_the_worker_answering_connects_and_their_end_finishes_or_retries():
    assert leg.step(C, leg.WorkerStatus("in-progress")) == (T, [])
    assert leg.step(D, leg.WorkerStatus("in-progress")) == (D, [])  # not claimed: no change
    assert leg.step(C, leg.WorkerStatus("no-answer"))[1] == [leg.Job("worker_unreachable")]
    assert leg.step(C, leg.WorkerStatus("busy"))[1] == [leg.Job("worker_unreachable")]
    assert leg.step(T, leg.WorkerStatus("completed"))[1] == [leg.Job("finished", "connected")]
    # `completed` means answered: a status of the answer lost on the way still finishes.
    assert leg.step(C, leg.WorkerStatus("completed"))[1] == [leg.Job("finished", "connected")]
    assert leg.step(C, leg.WorkerStatus("ringing")) == (C, [])
