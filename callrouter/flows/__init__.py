"""The call conversations as pure decisions.

Nothing in this package does IO: no Flask, Redis, RQ, SQLAlchemy or Twilio REST. Functions
take plain values (the directory, what the caller pressed or said, `now`) and return plain
values that the web layer renders as TwiML and records in the call log.
"""
