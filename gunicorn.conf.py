"""Settings of `gunicorn app:app` (read from the working directory; command-line flags,
GUNICORN_CMD_ARGS and WEB_CONCURRENCY override them).

Webhooks are short and never wait on Twilio's REST API (that runs in the RQ worker), so sync
workers fit; several of them keep a slow dashboard page or export from delaying Twilio's
webhooks, which arrive concurrently (a transfer's status and conference callbacks).
"""

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count() + 1, 8))
timeout = 30  # a worker stuck this long is restarted; Twilio itself gives up after 15 s
graceful_timeout = 20
