"""The sandbox: run callrouter end to end without a Twilio account (see provider.py)."""
