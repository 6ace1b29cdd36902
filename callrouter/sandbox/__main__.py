"""`python -m callrouter.sandbox`: the sandbox telephone network as a process of its own.

`make run` starts the sandbox inside its own process; a trial on several machines or
containers (compose.yaml) runs this instead: the phones' page on `/sandbox` and the REST subset
on `/sandbox/api`, at `CALLROUTER_SANDBOX_BIND` (default 127.0.0.1:8001). The service's
processes reach it through `TWILIO_API_BASE_URL`, and it reaches their webhooks at
`PUBLIC_BASE_URL`. It runs only with the sandbox's own account SID: never with a real one.
"""

from __future__ import annotations

import os
import sys

from callrouter.devserver import sandbox_app
from callrouter.sandbox import SANDBOX_ACCOUNT
from callrouter.settings import from_env


def main() -> int:
    env = dict(os.environ)
    account = env.setdefault("TWILIO_ACCOUNT_SID", SANDBOX_ACCOUNT)
    if account != SANDBOX_ACCOUNT:
        print(
            "callrouter sandbox: TWILIO_ACCOUNT_SID is a real account; the sandbox runs only "
            f"with its own ({SANDBOX_ACCOUNT}).",
            file=sys.stderr,
        )
        return 2
    bind = env.get("CALLROUTER_SANDBOX_BIND", "127.0.0.1:8001")
    host, _, port = bind.rpartition(":")
    from werkzeug.serving import run_simple

    app = sandbox_app(from_env(env), env)
    print(f"callrouter sandbox: phones on http://{bind}/sandbox", flush=True)
    run_simple(host, int(port), app, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
