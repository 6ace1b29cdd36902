"""The sandbox: run callrouter end to end without a Twilio account (see provider.py)."""

# The account SID the sandbox answers to; a service configured with it is in the sandbox.
SANDBOX_ACCOUNT = "AC" + "5a" * 16
