"""What the documentation generates from the code, so those parts cannot drift from it.

- The configuration reference: every environment variable the code reads, found by reading
  the source (``os.environ.get("SAGAWORKS_...", default)`` and the constants that name one),
  with the default the code passes and where it is read; the meaning of each comes from
  ``docs/configuration.toml``. ``tests/test_docs.py`` fails when the code reads a variable
  that file does not describe, or the file describes one the code no longer reads.
- The families: the table of built-in families and the facts block of each family's page,
  from ``sagaworks.registry()`` (workflow type, input model and its fields, signals and
  updates, approval, samples, restart points, extra).

Used by ``docs/hooks.py`` while MkDocs builds, and by the tests.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# The code that runs in a deployment (benchmarks, tests and examples are not configured).
SOURCES = ("sagaworks", "client", "activities", "workflows", "contracts", "mcp_servers", "worker.py")
# Names of the environment variables sagaworks itself defines or reads. Temporal's own
# envconfig variables (TEMPORAL_*) are read by the SDK, so they are described, not scanned.
VARIABLE = re.compile(
    r"^(SAGAWORKS_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL|GROQ_[A-Z_]+|QUERY_[A-Z_]+|[A-Z]+_AGENT_URL|OTEL_[A-Z_]+|OPENAI_API_KEY)$"
)
DESCRIPTIONS = DOCS / "configuration.toml"


@dataclass
class Setting:
    name: str
    files: set[str] = field(default_factory=set)
    default: str | None = None
    prefix: bool = False
    """The code builds names that start with it (``SAGAWORKS_BREAKER_<NAME>``)."""


def _source_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = ROOT / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [f for f in files if "node_modules" not in f.parts]


def _constants(tree: ast.Module) -> dict[str, object]:
    """Module-level constants (``KEYS_ENV = "SAGAWORKS_ENCRYPTION_KEYS"``, ``DEFAULT_X = 10``)."""
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value
    return found


def _prefix(text: str) -> str | None:
    """``SAGAWORKS_LLM_`` names the variables that start with it (read as prefix + key)."""
    return text + "*" if re.fullmatch(r"SAGAWORKS_[A-Z0-9_]+_", text) else None


def _is_env_read(call: ast.Call) -> bool:
    func = call.func
    text = ast.unparse(func)
    return text.endswith(("environ.get", "getenv", "environ.setdefault"))


def env_settings() -> dict[str, Setting]:
    """Every variable the deployed code reads, by name."""
    settings: dict[str, Setting] = {}
    for path in _source_files():
        tree = ast.parse(path.read_text(), str(path))
        rel = path.relative_to(ROOT).as_posix()
        constants = _constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = _prefix(node.value) or (node.value if VARIABLE.match(node.value) else None)
                if name:
                    settings.setdefault(name, Setting(name, prefix=name.endswith("*"))).files.add(rel)
            elif isinstance(node, ast.JoinedStr) and len(node.values) > 1:
                first, last = node.values[0], node.values[-1]
                name = None
                if isinstance(first, ast.Constant):
                    name = _prefix(str(first.value))
                elif isinstance(last, ast.Constant) and re.fullmatch(r"_[A-Z]+_[A-Z_]+", str(last.value)):
                    name = "*" + str(last.value)  # f"{agent.upper()}_AGENT_URL"
                if name:
                    settings.setdefault(name, Setting(name, prefix=True)).files.add(rel)
            elif isinstance(node, ast.Call) and _is_env_read(node) and len(node.args) >= 2:
                key = node.args[0]
                variable = (
                    key.value
                    if isinstance(key, ast.Constant)
                    else constants.get(key.id)
                    if isinstance(key, ast.Name)
                    else None
                )
                if isinstance(variable, str) and VARIABLE.match(variable):
                    default = node.args[1]
                    if isinstance(default, ast.Name) and default.id in constants:
                        text = str(constants[default.id])
                    else:
                        text = str(default.value) if isinstance(default, ast.Constant) else ast.unparse(default)
                    setting = settings.setdefault(variable, Setting(variable))
                    setting.files.add(rel)
                    if setting.default is None and text not in ("", "None"):
                        setting.default = text
    # A name only mentioned inside a longer prefix's family (SAGAWORKS_LLM_) stays listed.
    return dict(sorted(settings.items()))


def descriptions() -> dict[str, dict[str, str]]:
    """docs/configuration.toml: per variable its ``meaning``, optionally a ``default`` said in
    words, and ``read_by`` for a variable read by a library, not by sagaworks' code."""
    return tomllib.loads(DESCRIPTIONS.read_text())


def configuration_table() -> str:
    """The reference table: variable, meaning, default, where the code reads it."""
    described = descriptions()
    found = env_settings()
    rows = ["| variable | meaning | default | read in |", "|---|---|---|---|"]
    for name in sorted(set(found) | set(described)):
        info = described.get(name, {})
        setting = found.get(name)
        default = info.get("default") or (f"`{setting.default}`" if setting and setting.default else "-")
        files = ", ".join(f"`{f}`" for f in sorted(setting.files)) if setting else info.get("read_by", "-")
        meaning = info.get("meaning", "**not described**").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | {meaning} | {default.replace('|', chr(92) + '|')} | {files} |")
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------------------------------
# Families


def family_page(name: str) -> Path:
    return DOCS / "families" / f"{name}.md"


_POLICIES = {
    "REJECT_DUPLICATE": "refused, also after the first run closed",
    "ALLOW_DUPLICATE": "refused while the first run is open; a new run once it closed",
    "ALLOW_DUPLICATE_FAILED_ONLY": "refused unless the first run failed",
    "TERMINATE_IF_RUNNING": "terminates the open run and starts a new one",
}


def _policy(family: Any) -> str:
    if family._workflow_id is None:
        return "a new run (each start gets a new workflow id)"
    name = family.id_reuse_policy.name.removeprefix("WORKFLOW_ID_REUSE_POLICY_")
    return f"{_POLICIES.get(name, name)} (`{name}`)"


def _ref(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    return f"{obj.__module__}:{obj.__qualname__}"


def families_table() -> str:
    import sagaworks

    rows = ["| family | workflow type | what it does | extra |", "|---|---|---|---|"]
    registry = sagaworks.registry()
    for fam in registry:
        if fam.distribution not in (None, "sagaworks"):
            continue
        link = f"[`{fam.name}`]({fam.name}.md)" if family_page(fam.name).exists() else f"`{fam.name}`"
        rows.append(f"| {link} | `{fam.workflow_type}` | {fam.description} | {fam.extra or '-'} |")
    for missing in registry.unavailable:
        rows.append(
            f"| `{missing.name}` | - | unavailable here: {missing.missing} is not installed ({missing.install}) | - |"
        )
    return "\n".join(rows) + "\n"


def _input_fields(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    described = any(spec.get("description") for spec in schema.get("properties", {}).values())
    rows = [
        "| field | type | required | default |" + (" description |" if described else ""),
        "|---|---|---|---|" + ("---|" if described else ""),
    ]
    for field_name, spec in schema.get("properties", {}).items():
        kind = (
            spec.get("type")
            or " or ".join(
                str(s.get("type") or s.get("$ref", "").rpartition("/")[2])
                for s in spec.get("anyOf", spec.get("allOf", []))
            )
            or spec.get("$ref", "").rpartition("/")[2]
            or "any"
        )
        default = json.dumps(spec["default"]) if "default" in spec else ""
        text = " ".join(str(spec.get("description", "")).split()).replace("|", "\\|")
        shown_default = default.replace("|", chr(92) + "|")
        row = f"| `{field_name}` | {kind} | {'yes' if field_name in required else ''} | {shown_default} |"
        rows.append(row + (f" {text} |" if described else ""))
    return rows


def family_facts(name: str) -> str:
    """The registry's facts about one family, as Markdown."""
    import sagaworks

    fam = sagaworks.registry().family(name)
    lines = [
        "| | |\n|---|---|",
        f"| workflow type | `{fam.workflow_type}` |",
        f"| workflow | `{_ref(fam._workflow)}` |",
        f"| input model | `{_ref(fam._input_model)}` |",
        f"| start | `saga run {fam.name} --input FILE`, `POST /api/workflows/{fam.name}` |",
        f"| a second start of the same input | {_policy(fam)} |",
        f"| signals | {', '.join(f'`{s}`' for s in fam.signals) or '-'} |",
        f"| updates | {', '.join(f'`{u}`' for u in fam.updates) or '-'} |",
    ]
    if fam.approval is not None:
        a = fam.approval
        lines.append(f"| approval | {a.subject}; deadline {a.deadline or 'none'}; then {a.escalation} |")
    if issubclass(fam.workflow, sagaworks.StepWorkflow) and fam.workflow.restarts_from_steps:
        lines.append("| restart points (`--from`) | any step of the run's plan (the step runner) |")
    else:
        lines.append("| restart points | none (not restartable) |")
    if fam.helper_workflows:
        lines.append(f"| child workflows | {', '.join(f'`{_ref(w)}`' for w in fam._helper_workflows)} |")
    if fam.samples:
        base = (
            f"samples/{fam.samples_dir.name}/"
            if fam.samples_dir is not None and fam.samples_dir.name != "samples"
            else "samples/"
        )
        lines.append(f"| samples | {', '.join(f'`{base}{s}`' for s in fam.samples)} |")
    if fam.demo:
        lines.append(f"| `make demo` runs | {', '.join(f'`{d.sample}` ({d.expect})' for d in fam.demo)} |")
    lines.append(f"| extra | {f'`pip install sagaworks[{fam.extra}]`' if fam.extra else 'none (the engine)'} |")
    out = "\n".join(lines) + "\n\n"
    out += (
        f"**Input** (`{fam.input_model.__name__}`, JSON; unknown fields are refused):\n\n"
        + "\n".join(_input_fields(fam.input_model))
        + "\n"
    )
    return out


# ---------------------------------------------------------------------------------------
# The API reference


def reference_block() -> str:
    """The mkdocstrings block of every public name, in the order ``sagaworks.__all__`` lists
    them (the package's lazy exports, which a static reading cannot list by itself)."""
    import sagaworks

    names = [n for n in sagaworks.__all__ if not n.startswith("_") and n != "policies"]
    # The names re-exported from the repository's folders installed under sagaworks
    # (sagaworks.activities is activities/): a static reading finds them by their folder.
    mapped = {
        n: m for n, m in sagaworks._EXPORTS.items() if m.split(".")[1] in ("activities", "contracts", "workflows")
    }
    members = "\n".join(f"        - {n}" for n in names if n not in mapped)
    out = (
        "::: sagaworks\n    options:\n      show_submodules: false\n      show_root_toc_entry: false\n"
        f"      members:\n{members}\n\n"
    )
    for name, module in mapped.items():
        out += (
            f"::: {module.removeprefix('sagaworks.')}.{name}\n    options:\n      show_root_heading: true\n"
            f"      show_root_full_path: false\n      heading_level: 2\n\n"
        )
    return out + (
        "## sagaworks.policies\n\n::: sagaworks.policies\n"
        "    options:\n      show_root_heading: false\n      show_root_toc_entry: false\n"
    )
