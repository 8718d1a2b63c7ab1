"""The engine installs without the built-in families' extras (pyproject.toml).

Every library only an extra brings is made missing in a fresh interpreter, which then
imports what runs for any family. A family's own modules may fail so: the registry lists
such a family as unavailable.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


ENGINE_MODULES = [
    "sagaworks",
    "sagaworks.client.cli",
    "sagaworks.worker",
    "sagaworks.client.api.app",
    "sagaworks.client.codec_server",
]
"""What runs for any family: the CLI, the worker, the API with its console, the codec server."""

_BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (an extra's)", name=name)
        return None
sys.meta_path.insert(0, Missing())
for module in sys.argv[2:]:
    __import__(module)
"""


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_the_engine_imports_without_the_extras() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    family_only = _names([r for name, reqs in extras.items() if name not in ("test", "bench") for r in reqs])
    family_only -= _names(PYPROJECT["project"]["dependencies"]) | {"sagaworks"}
    blocked = sorted(
        module
        for module, dists in packages_distributions().items()
        # Not a module an engine library also provides (temporalio-mcp adds temporalio.mcp).
        if {d.lower().replace("_", "-") for d in dists} <= family_only and not module.startswith("_")
    )
    assert {"yaml", "mcp", "jsonschema", "sqlglot", "langchain_groq"} <= set(blocked)
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER, ",".join(blocked), *ENGINE_MODULES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
