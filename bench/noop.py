"""The baseline job of the queue benchmarks: does nothing."""


def noop() -> None:
    return None
