"""The service container: settings, directory, database, Redis, queue and telephony adapter.

Built once by `create_app` and kept in `app.extensions["callrouter"]`; the web process and the
RQ worker both reach it through `current()`. Redis and the telephony client are connected on
first use, so that a webhook that needs neither (the fallback) works while they are down.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from callrouter import db, redis_conn
from callrouter.directory import Directory
from callrouter.privacy import Pseudonymiser
from callrouter.settings import Settings

log = logging.getLogger(__name__)

QUEUE_CALLS = "calls"  # transfer legs: seconds matter
QUEUE_DEFAULT = "default"


class Services:
    def __init__(self, settings: Settings, directory: Directory, adapter=None):
        self.settings = settings
        self.directory = directory
        self.engine = db.make_engine(settings.database_url)
        self.sessions: sessionmaker[Session] = db.make_sessionmaker(self.engine)
        self.pseudonyms = Pseudonymiser(settings.secret_key)
        self._adapter = adapter
        self.rendered: dict = {}  # TwiML that depends only on the directory
        from callrouter.callbacks import PendingWorkers

        self.pending_workers = PendingWorkers(
            stamp=settings.instance_path / "pending-callbacks.stamp"
        )
        # RQ forks a work horse per job: a child must never reuse the parent's pooled
        # database connections (SQLAlchemy's advice for multiprocessing).
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self.engine.dispose(close=False)

    @cached_property
    def redis(self):
        return redis_conn.connect(self.settings.redis_url, self.settings.instance_path)

    def queue(self, name: str = QUEUE_CALLS):
        from rq import Queue

        return Queue(name, connection=self.redis)

    @property
    def telephony(self):
        if self._adapter is None:
            from callrouter.twilio_adapter import TwilioAdapter

            s = self.settings
            self._adapter = TwilioAdapter(
                s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base_url
            )
        return self._adapter

    def url(self, path: str) -> str:
        return self.settings.public_url(path)


def current() -> Services:
    return current_app.extensions["callrouter"]
