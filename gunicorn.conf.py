"""Settings of `gunicorn app:app` (read from the working directory; command-line flags,
GUNICORN_CMD_ARGS and WEB_CONCURRENCY override them).

Webhooks are short and never wait on Twilio's REST API (that runs in the RQ worker), so sync
workers fit; several of them keep a slow dashboard page or export from delaying Twilio's
webhooks, which arrive concurrently (a transfer's status and conference callbacks).
"""

import os

from callrouter import logs, multiproc
from callrouter.settings import instance_folder

# Before any worker imports prometheus_client: the workers' metrics go to one folder that
# /metrics sums (callrouter/multiproc.py).
multiproc.prepare(instance_folder(os.environ))

# LOG_FORMAT=json: gunicorn's own lines as JSON too, one object per line (callrouter/logs.py).
if _json_logs := logs.gunicorn_config(os.environ.get("LOG_FORMAT", "").strip().lower()):
    logconfig_dict = _json_logs


def _workers() -> int:
    """WEB_CONCURRENCY when it is a positive number; else 2 x the CPUs this process may use
    (a container's share, not the host's) + 1, at most 4 (each worker holds ~170 MB)."""
    value = os.environ.get("WEB_CONCURRENCY", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return min(2 * len(os.sched_getaffinity(0)) + 1, 4)


workers = _workers()
timeout = 30  # a worker stuck this long is restarted; Twilio itself gives up after 15 s
graceful_timeout = 20


def post_worker_init(worker):
    """The application is loaded: move its objects (the directory, SQLAlchemy's mappers, the
    prepared TwiML) out of the garbage collector's sight. A full collection otherwise scans
    them all, about 140,000 objects and some 60 ms, in the middle of a webhook."""
    import gc

    gc.freeze()


def child_exit(server, worker):
    multiproc.worker_exited(worker.pid)
