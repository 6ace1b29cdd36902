"""The pure core imports no Flask, Redis, RQ, SQLAlchemy or twilio.rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("flask", "redis", "rq", "sqlalchemy", "twilio.rest", "twilio")


def test_flows_import_no_side_effect_libraries():
    """Importing every flows module (and the directory) loads none of the forbidden packages."""
    modules = sorted(
        p.stem for p in (ROOT / "callrouter" / "flows").glob("*.py") if p.stem != "__init__"
    )
    assert {"routing", "hours", "menu", "transfer", "speech"} <= set(modules)
    code = (
        "import sys\n"
        + "".join(f"import callrouter.flows.{m}\n" for m in modules)
        + "import callrouter.directory\n"
        + "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(out.stdout.split())
    bad = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert bad == []


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _importers(prefix: str) -> list[str]:
    return sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "callrouter").rglob("*.py")
        if any(name == prefix or name.startswith(prefix + ".") for name in _imports(p))
    )


def test_only_the_twiml_module_builds_twiml():
    """TwiML is rendered in one place (the SDK's builder), never written by hand elsewhere."""
    assert _importers("twilio.twiml") == ["callrouter/twiml.py"]


def test_only_the_adapter_talks_to_the_rest_api():
    assert _importers("twilio.rest") == ["callrouter/twilio_adapter.py"]


def test_voice_handlers_leave_transfer_rows_to_the_store():
    """The transfer's course is the model's: no voice module writes a transfer's state,
    outcome or the worker's place itself (the store does, from the model's new state)."""
    import re

    # (`tr` and `loaded.row` name a transfer row throughout the voice package.)
    written = re.compile(r"\b(tr|loaded\.row)\.(state|outcome|worker_place|accepted_at)\s*=[^=]")
    offenders = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "callrouter" / "voice").glob("*.py")
        if written.search(p.read_text(encoding="utf-8"))
    )
    assert offenders == []


def _runtime_imports(path: Path) -> set[str]:
    """The modules a file imports when it runs (imports under `if TYPE_CHECKING:` left out)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_voice_handlers_and_jobs_write_no_sql():
    """Queries live in the store (`callrouter/store/`) and the domain modules beside the
    models; the webhooks and the jobs call them, and build no statement of their own."""
    import re

    query = re.compile(r"\b(s|session|conn)\.(execute|scalar|scalars)\(")
    files = sorted((ROOT / "callrouter" / "voice").glob("*.py")) + [ROOT / "callrouter/jobs.py"]
    offenders = sorted(
        str(p.relative_to(ROOT))
        for p in files
        if any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in _runtime_imports(p))
        or query.search(p.read_text(encoding="utf-8"))
    )
    assert offenders == []


def test_modules_and_functions_stay_small():
    """No module of the package is longer than 500 lines and no function longer than 80
    (tests, benchmarks and the generated migrations aside): a module that grows past it has
    two subjects, a function that does, several steps with names of their own."""
    import ast

    long_modules, long_functions = [], []
    for path in sorted((ROOT / "callrouter").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        if text.count("\n") > 500:
            long_modules.append((name, text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long_functions.append((name, node.name, length))
    assert long_modules == [] and long_functions == []
