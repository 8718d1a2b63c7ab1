"""Import rules, read from the source with ``ast``: the engine never imports a family,
``client/`` never imports a family's activities, and nothing imports the repository's
folders by their bare names (installed, they exist only under ``sagaworks``).

Engine-level modules live in the family folders for now (the repository's layout); they
are listed here, each with why it belongs to the engine. A new module in those folders is
a family's until it is listed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ENGINE_MODULES = {
    # workflows/
    "sagaworks.workflows": "the package itself (a docstring)",
    "sagaworks.workflows.cpu": "the CPU-bound task queue the worker serves from its process pool",
    "sagaworks.workflows.fallback": "retry then fall back, for any step",
    "sagaworks.workflows.mcp": "durable MCP tool calls from any workflow",
    # activities/
    "sagaworks.activities": "the package itself (a docstring)",
    "sagaworks.activities.db": "the application database's import path for the families (sagaworks._db)",
    "sagaworks.activities.catalog": "the built-in families' activity factories, each importing its own family lazily",
    "sagaworks.activities.errors": "the error taxonomy every activity raises through",
    "sagaworks.activities.processes": "the worker's process pool helper",
    "sagaworks.activities.liveness": "heartbeats for any long blocking call",
    "sagaworks.activities.mcp_servers": "MCP servers as configuration and the worker's MCP plugin",
    # contracts/
    "sagaworks.contracts": "the package itself (a docstring)",
    "sagaworks.contracts.common": "the status shape, stage resume points and text keys of every family",
    "sagaworks.contracts.breakers": "what a breaker reports",
    "sagaworks.contracts.fallback": "what a step run with a fallback reports",
}

FAMILY_PACKAGES = ("sagaworks.workflows", "sagaworks.activities", "sagaworks.contracts")

CLIENT_MAY_IMPORT_FAMILY_ACTIVITIES = {
    # `saga agent NAME` serves one of the query family's agents over HTTP: a family's own
    # command, to move onto an entry point of that family (the family port is later work).
    ("client/cli/services.py", "sagaworks.activities.query.remote"),
}

BARE_NAMES = {"workflows", "activities", "client", "contracts", "mcp_servers", "worker"}

SKIPPED_FOLDERS = {".venv", ".venv-mcp-sqlite", "node_modules", ".git", "build", "dist"}


def python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if not SKIPPED_FOLDERS.intersection(path.relative_to(ROOT).parts):
                yield path


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module an import statement of ``path`` names (``from a import b`` names
    ``a`` and ``a.b``: b may be a module), with its line; nested and guarded ones too."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def is_family_module(module: str) -> bool:
    if not module.startswith(tuple(f"{p}." for p in FAMILY_PACKAGES)) and module not in FAMILY_PACKAGES:
        return False
    # Judged by the module inside the package: `from sagaworks.activities.db import
    # Database` names sagaworks.activities.db.Database, of the engine's db module.
    inside = ".".join(module.split(".")[:3])
    return inside not in ENGINE_MODULES


def test_the_engine_imports_no_family() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files("sagaworks")
        for line, module in imported_modules(path)
        if is_family_module(module)
    ]
    assert offences == []


def allowed(path: Path, module: str) -> bool:
    where = str(path.relative_to(ROOT))
    return any(
        where == file and (module == name or module.startswith(f"{name}."))
        for file, name in CLIENT_MAY_IMPORT_FAMILY_ACTIVITIES
    )


def test_the_client_imports_no_family_activities() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files("client")
        for line, module in imported_modules(path)
        if module.startswith("sagaworks.activities") and is_family_module(module) and not allowed(path, module)
    ]
    assert offences == []


def test_nothing_imports_the_repository_folders_by_their_bare_names() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files(".")
        for line, module in imported_modules(path)
        if module.split(".")[0] in BARE_NAMES
    ]
    assert offences == []


FAMILIES_ON_THE_PUBLIC_API = {
    # family: its own modules (repository paths), and modules it shares with other families
    "order": (("workflows/order.py", "activities/orders.py", "contracts/orders.py"), ()),
    "query": (
        (
            "workflows/query.py",
            "contracts/query.py",
            "activities/query/__init__.py",
            "activities/query/activities.py",
            "activities/query/agents.py",
            "activities/query/dataset.py",
            "activities/query/parser.py",
            "activities/query/remote.py",
            "activities/query/sql.py",
            "activities/query/viz.py",
        ),
        # the worker's process-pool helper, whose render modules the query family preloads
        ("sagaworks.activities.processes",),
    ),
    "routing": (("workflows/routing.py", "activities/routing.py", "contracts/routing.py"), ()),
    "support-ticket": (("workflows/support_ticket.py", "activities/support_ticket.py", "contracts/support.py"), ()),
    "sequential": (
        ("workflows/sequential.py", "activities/sequential.py", "contracts/sequential.py"),
        # the text families' shared analysis (the `text` extra), also parallel-analysis's
        ("sagaworks.activities.text_analysis", "sagaworks.contracts.text"),
    ),
    "document": (
        (
            "workflows/document.py",
            "contracts/document.py",
            "activities/document/__init__.py",
            "activities/document/activities.py",
            "activities/document/extraction.py",
            "activities/document/formats.py",
            "activities/document/listing.py",
            "activities/document/ranking.py",
            "activities/document/roots.py",
            "activities/document/tables.py",
            # the concept shape and the offline extractor (the gateway's fallback)
            "activities/llm.py",
        ),
        (),
    ),
    "document-batch": (
        ("workflows/document_batch.py",),
        # each document runs through the document family's pipeline, activities and contracts
        ("sagaworks.workflows.document", "sagaworks.activities.document", "sagaworks.contracts.document"),
    ),
    "blog": (
        ("workflows/blog.py", "activities/writing.py", "contracts/blog.py"),
        # research is the iterative family's BM25 search (its modules); the shared text analysis
        ("sagaworks.activities.search", "sagaworks.contracts.search", "sagaworks.activities.text_analysis"),
    ),
    "parallel-analysis": (
        (
            "workflows/parallel_analysis.py",
            "activities/parallel_analysis.py",
            "activities/parallel_analysis_llm.py",
            "contracts/parallel_analysis.py",
        ),
        # the text families' shared analysis and its contracts
        ("sagaworks.activities.text_analysis", "sagaworks.contracts.text"),
    ),
    "iterative": (
        ("workflows/iterative.py", "activities/search.py", "contracts/iterative.py", "contracts/search.py"),
        # the document family's stored chunks it searches; the shared text analysis
        ("sagaworks.activities.document", "sagaworks.activities.text_analysis"),
    ),
    "aggregate": (("workflows/aggregate.py", "contracts/aggregate.py"), ()),
    "mcp-call": (("workflows/mcp_call.py", "contracts/mcp.py"), ()),
    "plan-analysis": (
        (
            "workflows/plan_analysis.py",
            "contracts/plans.py",
            "activities/plan_analysis/__init__.py",
            "activities/plan_analysis/activities.py",
            "activities/plan_analysis/analysis.py",
            "activities/plan_analysis/audit.py",
            "activities/plan_analysis/common.py",
            "activities/plan_analysis/extraction.py",
            "activities/plan_analysis/llm_pass.py",
            "activities/plan_analysis/registry.py",
            "activities/plan_analysis/report.py",
            "activities/plan_analysis/store.py",
        ),
        (),
    ),
    "news-digest": (
        ("workflows/news_digest.py", "activities/news.py", "activities/feed_reader.py", "contracts/news_digest.py"),
        # the shared text analysis; the document roots (a feed may be a file under them)
        ("sagaworks.activities.text_analysis", "sagaworks.activities.document"),
    ),
}
"""The families written on the public API alone, as a project of its own writes one. The
other built-in families still import engine modules by their paths in the repository's
folders; each moves here once it is ported."""


def _module_of(path: str) -> str:
    return "sagaworks." + path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


@pytest.mark.parametrize("family", sorted(FAMILIES_ON_THE_PUBLIC_API))
def test_a_family_on_the_public_api_imports_only_public_names_and_its_own_modules(family: str) -> None:
    own, shared = FAMILIES_ON_THE_PUBLIC_API[family]
    allowed_modules = {_module_of(path) for path in own} | set(shared) | {"sagaworks", "sagaworks.policies"}
    offences = [
        f"{path}:{line} imports {module}"
        for path in own
        for line, module in imported_modules(ROOT / path)
        if module.startswith("sagaworks")
        and not any(module == name or module.startswith(f"{name}.") for name in allowed_modules - {"sagaworks"})
        # `from sagaworks import X` names sagaworks and sagaworks.X: public names only
        and not (
            module == "sagaworks"
            or (
                module.count(".") == 1
                and not module.split(".")[1].startswith("_")
                and module.split(".")[1] not in {"workflows", "activities", "contracts", "client", "mcp_servers"}
            )
        )
    ]
    assert offences == []


@pytest.mark.parametrize("module", sorted(ENGINE_MODULES))
def test_every_listed_engine_module_exists(module: str) -> None:
    """A module moved or renamed must leave the list, or the list would excuse nothing."""
    parts = module.split(".")[1:]
    folder = ROOT.joinpath(*parts)
    assert folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file(), module


def test_the_rules_catch_what_they_forbid(tmp_path: Path) -> None:
    source = tmp_path / "offender.py"
    source.write_text(
        "from sagaworks.activities.orders import OrderActivities\n"
        "from sagaworks.activities.db import Database\n"
        "def later():\n    import workflows.order\n"
    )
    modules = [module for _, module in imported_modules(source)]
    assert is_family_module("sagaworks.activities.orders.OrderActivities")
    assert not is_family_module("sagaworks.activities.db.Database")
    assert not is_family_module("sagaworks.client.runs")
    assert "workflows.order" in modules  # nested imports count too
