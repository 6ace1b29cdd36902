"""The transfer model run inside a webhook's transaction, its actions handed to the jobs."""

from __future__ import annotations

from callrouter import clock, jobs
from callrouter.store import transfers as store


def run(s, loaded: store.Loaded, event) -> str | None:
    """Run one event through the transfer model in the handler's transaction: store the new
    state, dispatch its jobs (enqueued after the commit); the kind of its reply, if any."""
    actions = store.apply(s, loaded, event, clock.now())
    jobs.carry_out(loaded.row.id, loaded.row.worker_call_sid, actions)
    return store.reply(actions)
