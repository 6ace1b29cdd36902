"""The sandbox's status and conference callbacks on their way to the service, and the shuffle
mode that delivers them out of order (see provider.py for why)."""

from __future__ import annotations

import random
from collections.abc import Callable

from callrouter.sandbox.state import Fetch


def shuffler(shuffle: int | random.Random | None) -> random.Random | None:
    """The Random a shuffled run draws from: the one given, or one with this seed; None (no
    shuffle) delivers callbacks at once, in order."""
    if isinstance(shuffle, random.Random):
        return shuffle
    return random.Random(shuffle) if shuffle is not None else None


class Outbox:
    """Asynchronous callbacks: fetched at once, or (with `rng`) held here until a shuffled run
    delivers them in a random order, a share `duplicates` of them twice."""

    def __init__(self, fetch: Fetch, rng: random.Random | None, duplicates: float):
        self.fetch = fetch
        self.rng = rng
        self.duplicates = duplicates
        self.waiting: list[tuple[str, dict]] = []

    def send(self, url: str, params: dict) -> None:
        """Send an asynchronous callback: at once, or (shuffled) later, maybe twice."""
        if self.rng is None:
            self.fetch("POST", url, params)
            return
        self.waiting.append((url, params))
        if self.rng.random() < self.duplicates:
            self.waiting.append((url, dict(params)))

    def deliver(self) -> None:
        """Deliver one waiting callback, chosen at random."""
        url, params = self.waiting.pop(self.rng.randrange(len(self.waiting)))
        self.fetch("POST", url, params)


def run_shuffled(
    outbox: Outbox,
    between: Callable[[], object] | None,
    move_a_call: Callable[[random.Random], bool],
    max_steps: int,
) -> int:
    """One random move at a time: deliver a waiting callback, let the service's jobs run,
    or advance one call; until no call can move, the outbox is empty and no job ran.

    `move_a_call(rng)` advances one call that can move (True), or finds none (False)."""
    rng, steps = outbox.rng, 0
    while steps < max_steps:
        steps += 1
        roll = rng.random()
        if outbox.waiting and roll < 0.4:
            outbox.deliver()
            continue
        if between is not None and roll < 0.5 and between():
            continue
        if move_a_call(rng):
            continue
        if outbox.waiting:
            outbox.deliver()
        elif between is None or not between():
            return steps - 1
    return steps
