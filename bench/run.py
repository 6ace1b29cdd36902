"""Benchmarks of the routing core, reported as ratios against a baseline measured in the same run.

1. The routing decision (identify the caller + resolve the menu + open now?) on a directory of
   400 callers and 2,000 lines, and on one ten times larger: the ratio of their per-call times
   (target <= 1.5: the decision must not grow with the directory).
2. Loading and validating a 2,000-line directory (time, and per line).

Run: `make bench` (or `.venv/bin/python bench/run.py`).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callrouter import directory as directory_mod
from callrouter.flows import hours, routing

LINES_PER_ORG = 10
WORDS = [
    "toeslag",
    "pensioen",
    "studie",
    "boete",
    "verblijf",
    "zorg",
    "uitkering",
    "schuld",
    "huur",
    "kind",
    "werk",
    "ziekte",
    "belasting",
    "inburgering",
    "wonen",
    "vervoer",
]


def make_directory(callers: int, lines: int) -> str:
    """A valid directory text of the given size (numbers are well-formed and fictitious)."""
    out = ['internal_number: "+31880100100"', "callers:"]
    for i in range(callers):
        out += [
            f"  - id: c{i}",
            f"    name: Gemeente {i}",
            f'    code: "{10000 + i}"',
            f'    numbers: ["+3130{2000000 + i}", "+3153{10000 + i:05d}*"]',
        ]
    out.append("organisations:")
    for o in range(lines // LINES_PER_ORG):
        digit = f"\n    digit: {o + 1}" if o < 9 else ""
        out += [f"  - id: o{o}", f"    name: Organisatie {o}{digit}", "    lines:"]
        for k in range(LINES_PER_ORG):
            n = o * LINES_PER_ORG + k
            kw = f"{WORDS[n % len(WORDS)]}{n}"
            out += [
                f"      - id: l{n}",
                f"        topic: onderwerp {n}",
                f"        digit: {k}",
                f"        keywords: [{kw}]",
                f'        numbers: ["+3188{1000000 + n}"]',
                "        hours:",
                '          mon-fri: "08:30-12:00,13:00-17:00"',
            ]
    return "\n".join(out) + "\n"


def decision_cost(d: directory_mod.Directory, rounds: int, seed: int = 1) -> float:
    """Seconds per routing decision, the best of several repeats."""
    rng = random.Random(seed)
    n_callers = len(d.callers)
    n_lines = len(d.lines)
    cases = []
    for _ in range(2000):
        i = rng.randrange(n_callers)
        number = (
            f"+3153{10000 + i:05d}{rng.randrange(100):02d}"
            if rng.random() < 0.5
            else f"+3130{2000000 + i}"
        )
        n = rng.randrange(n_lines)
        said = f"ik bel over {WORDS[n % len(WORDS)]}{n} graag"
        digits = f"{rng.randrange(1, 10)}{rng.randrange(10)}"
        cases.append((number, said, digits))
    now = datetime(2026, 11, 25, 10, 15, tzinfo=UTC)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for number, said, digits in cases:
            caller = routing.identify(d, number)
            assert caller is not None
            choice = routing.resolve_speech(d, said)
            assert choice is not None and choice.line is not None
            by_keys = routing.resolve_digits(d, digits)
            assert by_keys is not None
            hours.is_open(d, choice.line, now)
        best = min(best, (time.perf_counter() - t0) / len(cases))
    return best


def load_cost(text: str, rounds: int = 3) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lines.yaml"
        path.write_text(text)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            directory_mod.load(path)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    small = directory_mod.loads(make_directory(400, 2000), "small.yaml")
    large = directory_mod.loads(make_directory(4000, 20000), "large.yaml")
    # Warm the lazily built indexes, then measure both in the same run.
    decision_cost(small, 1)
    decision_cost(large, 1)
    t_small = decision_cost(small, 5)
    t_large = decision_cost(large, 5)
    ratio = t_large / t_small
    print(f"routing decision, 400 callers / 2,000 lines:    {t_small * 1e6:8.1f} us")
    print(f"routing decision, 4,000 callers / 20,000 lines: {t_large * 1e6:8.1f} us")
    print(f"ratio 10x / 1x: {ratio:.2f} (target <= 1.5) {'OK' if ratio <= 1.5 else 'OVER TARGET'}")
    t_load = load_cost(make_directory(400, 2000))
    print(
        f"load + validate 2,000 lines / 400 callers: {t_load:.2f} s "
        f"({t_load / 2000 * 1e3:.2f} ms per line)"
    )
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
