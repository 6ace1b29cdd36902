"""The pure core imports no Flask, Redis, RQ, SQLAlchemy or twilio.rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("flask", "redis", "rq", "sqlalchemy", "twilio.rest", "twilio")


def test_flows_import_no_side_effect_libraries():
    """Importing every flows module (and the directory) loads none of the forbidden packages."""
    modules = sorted(p.stem for p in (ROOT / "callrouter" / "flows").glob("*.py")
                     if p.stem != "__init__")
    assert {"routing", "hours", "menu", "transfer", "speech"} <= set(modules)
    code = (
        "import sys\n"
        + "".join(f"import callrouter.flows.{m}\n" for m in modules)
        + "import callrouter.directory\n"
        + "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    loaded = set(out.stdout.split())
    bad = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert bad == []
