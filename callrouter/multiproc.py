"""The folder of prometheus_client's multiprocess mode, for the web service under gunicorn.

Gunicorn's workers are separate processes: each keeps its counters and histograms in memory
mapped files of one folder, and a scrape sums the files of every worker, also of workers that
have ended (a counter keeps what it counted). prometheus_client chooses that mode when it is
imported, from `PROMETHEUS_MULTIPROC_DIR`, so `prepare()` must run first: gunicorn.conf.py calls
it in the master, before any worker loads the application.

This module imports nothing of prometheus_client for that reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_OWNER = "CALLROUTER_METRICS_MASTER"  # the pid that prepared the folder (a reload keeps it)


def prepare(instance: Path, pid: int | None = None) -> Path:
    """Set `PROMETHEUS_MULTIPROC_DIR` for this process and its children, and empty it.

    An operator's own setting is kept (and emptied: its files are of an earlier run). Else the
    folder is `<instance>/metrics/web-<pid of the master>`, so that two gunicorns on one
    machine never count into each other's files (also the new master of a binary upgrade,
    USR2, which inherits the old one's setting while the old workers still serve); folders of
    masters no longer running are removed.
    """
    if "prometheus_client.values" in sys.modules and ENV not in os.environ:
        raise RuntimeError(
            "prometheus_client was imported before its multiprocess folder was set; "
            "call callrouter.multiproc.prepare() first"
        )
    pid = os.getpid() if pid is None else pid
    given, owner = os.environ.get(ENV), os.environ.get(_OWNER)
    if given and owner == str(pid):
        return Path(given)  # gunicorn re-reads its settings on HUP: the workers' files stay
    if given and not owner:
        folder = Path(given)  # the operator's
    else:
        parent = instance / "metrics"
        _remove_stale(parent)
        folder = parent / f"web-{pid}"
    if folder.exists():
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(folder)
    os.environ[_OWNER] = str(pid)
    return folder


def worker_exited(pid: int) -> None:
    """Gunicorn's child_exit: drop the live gauges of a worker that ended (its counters stay)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _remove_stale(parent: Path) -> None:
    if not parent.is_dir():
        return
    for folder in parent.glob("web-*"):
        pid = folder.name[4:]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True
