"""``saga patches``: every patch id the workflow code holds, and the open runs that may still
need each one (the policy is docs/patches.md).

The ids are found statically: an AST walk over the modules of each registered family's
workflow (and its helper workflows), following their imports of ``sagaworks`` modules (an
engine class such as ``Approval`` calls ``workflow.patched`` on the family's behalf), for
calls of ``workflow.patched(ID)`` and ``workflow.deprecate_patch(ID)`` whose ``ID`` is a
string literal or a module-level string constant (of the module or imported from another).
Nothing is imported: a family whose extra is missing is scanned all the same.

Which open runs "may still need" a patch is read from their histories, where the SDK records
a ``core_patch`` marker (the patch id, and whether the call was ``deprecate_patch``) the
first time a run takes the patched branch:

- for a ``workflow.patched`` call, an open run of a workflow type that uses it whose history
  holds no marker of the id: it started on code without the patch (it needs the old
  branch), or it has not reached the call yet (it does not, but its history cannot tell;
  such a run is listed until it reaches the call or closes: the rule errs on the safe side);
- for a ``workflow.deprecate_patch`` call, an open run whose history holds the id's marker
  written by ``workflow.patched`` (not deprecated): removing the call would break its replay.

A patch with no such run anywhere its code is deployed may move to its next stage.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory

from sagaworks import Family, registry

PATCH_MARKER = "core_patch"
"""The marker name the SDK's Core records for a patch."""
PATCH_CALLS = {"patched": "patched", "deprecate_patch": "deprecated"}
ROOT_PACKAGE = "sagaworks"

Stage = Literal["patched", "deprecated"]


@dataclass(frozen=True)
class PatchCall:
    """One ``workflow.patched``/``deprecate_patch`` call found in the code."""

    patch_id: str
    stage: Stage
    module: str
    line: int


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    constants: dict[str, str] = field(default_factory=dict)
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Local name -> (module, name there), for ``from M import X [as Y]``."""


def _module_path(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _exports() -> dict[str, str]:
    """``sagaworks``'s lazy names -> the module defining each (read from its ``_EXPORTS``)."""
    path = _module_path(ROOT_PACKAGE)
    if path is None:
        return {}
    target: ast.expr
    expression: ast.expr | None
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign):
            target, expression = node.target, node.value
        elif isinstance(node, ast.Assign):
            target, expression = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and expression is not None:
            value = ast.literal_eval(expression)
            return dict(value) if isinstance(value, dict) else {}
    return {}


class CodeScan:
    """The modules reachable from a set of workflow modules, parsed once."""

    def __init__(self) -> None:
        self._modules: dict[str, _Module | None] = {}
        self._exports = _exports()

    def module(self, name: str) -> _Module | None:
        if name in self._modules:
            return self._modules[name]
        path = _module_path(name)
        parsed = None
        if path is not None:
            parsed = _Module(name, path, ast.parse(path.read_text(), str(path)))
            is_package = path.name == "__init__.py"
            for node in ast.walk(parsed.tree):
                if isinstance(node, ast.ImportFrom):
                    source = _absolute(name, node, is_package)
                    for alias in node.names:
                        parsed.imported[alias.asname or alias.name] = (source, alias.name)
            for node in parsed.tree.body:
                target = (
                    node.target
                    if isinstance(node, ast.AnnAssign)
                    else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
                )
                value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
                if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parsed.constants[target.id] = value.value
        self._modules[name] = parsed
        return parsed

    def reachable(self, roots: Iterable[str]) -> list[_Module]:
        """``roots`` and every ``sagaworks`` module they import, transitively."""
        seen: dict[str, _Module] = {}
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            parsed = self.module(name)
            if parsed is None:
                continue
            seen[name] = parsed
            for source, attr in parsed.imported.values():
                if source == ROOT_PACKAGE:
                    todo.append(self._exports.get(attr, f"{ROOT_PACKAGE}.{attr}"))
                elif source.startswith(ROOT_PACKAGE + "."):
                    todo.append(source)
                    todo.append(f"{source}.{attr}")  # ``from package import module``
        return [seen[name] for name in sorted(seen)]

    def constant(self, module: _Module, name: str, depth: int = 0) -> str | None:
        if name in module.constants:
            return module.constants[name]
        if name in module.imported and depth < 5:
            source, attr = module.imported[name]
            other = self.module(self._exports.get(attr, source) if source == ROOT_PACKAGE else source)
            if other is not None:
                return self.constant(other, attr, depth + 1)
        return None

    def calls(self, module: _Module) -> list[PatchCall]:
        """The patch calls of ``module`` whose id is known statically."""
        found = []
        for node in ast.walk(module.tree):
            if not (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PATCH_CALLS
            ):
                continue
            if not node.args:
                continue
            arg = node.args[0]
            patch_id = None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                patch_id = arg.value
            elif isinstance(arg, ast.Name):
                patch_id = self.constant(module, arg.id)
            if patch_id is not None:
                found.append(PatchCall(patch_id, PATCH_CALLS[node.func.attr], module.name, node.lineno))  # type: ignore[arg-type]
        return found


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _ref_module(ref: Any) -> str | None:
    if isinstance(ref, str):
        return ref.partition(":")[0] or None
    return getattr(ref, "__module__", None)


class PatchSite(BaseModel):
    """Where a patch id is called, and at which stage."""

    module: str
    line: int
    stage: Stage


class OpenRun(BaseModel):
    """An open run that may still need a patch."""

    workflow_id: str
    run_id: str
    workflow_type: str
    started: datetime | None
    why: str


class PatchReport(BaseModel):
    """One patch id: where the code calls it, the workflow types that may take it, and the
    open runs that may still need it (None when not looked up)."""

    patch_id: str
    stage: Stage
    """``deprecated`` when every call is ``deprecate_patch``, else ``patched``."""
    sites: list[PatchSite]
    workflow_types: list[str]
    families: list[str]
    open_runs: list[OpenRun] | None = None
    next_step: str = ""


def code_patches(families: Iterable[Family[Any]] | None = None) -> list[PatchReport]:
    """Every patch id in the code of ``families`` (default: the registered ones), read
    statically, with the workflow types and families whose code may reach it."""
    scan = CodeScan()
    by_id: dict[str, PatchReport] = {}
    for fam in registry().families if families is None else families:
        roots = [m for m in (_ref_module(r) for r in (fam._workflow, *fam._helper_workflows)) if m]
        types = [fam.workflow_type]
        for module in scan.reachable(roots):
            for call in scan.calls(module):
                report = by_id.setdefault(
                    call.patch_id,
                    PatchReport(patch_id=call.patch_id, stage=call.stage, sites=[], workflow_types=[], families=[]),
                )
                site = PatchSite(module=call.module, line=call.line, stage=call.stage)
                if site not in report.sites:
                    report.sites.append(site)
                report.workflow_types = sorted({*report.workflow_types, *types})
                report.families = sorted({*report.families, fam.name})
    for report in by_id.values():
        report.stage = "deprecated" if all(s.stage == "deprecated" for s in report.sites) else "patched"
    return [by_id[key] for key in sorted(by_id)]


def patch_markers(history: History | WorkflowHistory) -> dict[str, bool]:
    """The patch ids a history's markers record -> whether the call was ``deprecate_patch``."""
    found: dict[str, bool] = {}
    for event in history.events:
        if not event.HasField("marker_recorded_event_attributes"):
            continue
        marker = event.marker_recorded_event_attributes
        if marker.marker_name != PATCH_MARKER:
            continue
        details = marker.details.get("patch-data") if "patch-data" in marker.details else None
        if details is None or not details.payloads:
            continue
        try:
            data = json.loads(details.payloads[0].data)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            found[data["id"]] = bool(data.get("deprecated"))
    return found


def needs(report: PatchReport, markers: dict[str, bool]) -> str | None:
    """Why an open run with these history ``markers`` may still need ``report``'s patch, or None."""
    if report.stage == "patched":
        if report.patch_id not in markers:
            return (
                "its history has no marker of the patch: it started on code without it, or has not reached the call yet"
            )
        return None
    if markers.get(report.patch_id) is False:
        return "its history holds the marker workflow.patched wrote: removing the call would break its replay"
    return None


def next_step(report: PatchReport) -> str:
    if report.open_runs is None:
        return ""
    if report.open_runs:
        return f"keep: {len(report.open_runs)} open run(s) may still need it"
    if report.stage == "patched":
        return "no open run needs the old branch: may become workflow.deprecate_patch (docs/patches.md)"
    return "no open run holds a workflow.patched marker: the deprecate_patch call may be removed (docs/patches.md)"


async def open_runs_needing(client: Client, reports: list[PatchReport], *, limit: int = 1000) -> None:
    """Fill each report's ``open_runs`` from the open runs of its workflow types (at most
    ``limit`` runs per type; each run's history is fetched once)."""
    types = sorted({t for r in reports for t in r.workflow_types})
    markers: dict[str, tuple[Any, dict[str, bool]]] = {}
    for workflow_type in types:
        query = f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running'"
        async for execution in client.list_workflows(query, limit=limit):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
            markers[execution.run_id] = (execution, patch_markers(history))
    for report in reports:
        report.open_runs = []
        for execution, found in markers.values():
            if execution.workflow_type not in report.workflow_types:
                continue
            why = needs(report, found)
            if why is not None:
                report.open_runs.append(
                    OpenRun(
                        workflow_id=execution.id,
                        run_id=execution.run_id,
                        workflow_type=execution.workflow_type,
                        started=execution.start_time,
                        why=why,
                    )
                )
        report.next_step = next_step(report)


def patches_markdown(reports: list[PatchReport]) -> str:
    lines = [
        "| patch | stage | where | workflow types | open runs that may need it | next |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        where = "<br>".join(f"{s.module}:{s.line}" for s in r.sites)
        runs = "-" if r.open_runs is None else (", ".join(f"{o.workflow_id}" for o in r.open_runs[:10]) or "none")
        if r.open_runs and len(r.open_runs) > 10:
            runs += f" (+{len(r.open_runs) - 10})"
        lines.append(f"| {r.patch_id} | {r.stage} | {where} | {', '.join(r.workflow_types)} | {runs} | {r.next_step} |")
    return "\n".join(lines)
