"""The wheel: one import name, and everything the code finds beside itself inside it.

The repository's folders install under ``sagaworks`` by pyproject.toml's ``package-dir``.
Code finds its data as ``Path(__file__).parents[k] / "samples"`` (or ``mcp_servers/``):
that works installed only if every mapped folder keeps, inside ``sagaworks/``, the path it
has in the repository (``workflows/catalog.py`` -> ``sagaworks/workflows/catalog.py``,
``samples/`` -> ``sagaworks/samples/``). The wheel is built once (tests/wheels.py).
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from tests.wheels import PACKAGE_DIR, PYPROJECT, ROOT, sagaworks_wheel

GENERATED = {"samples/support/support.db"}
"""Built by ``make install`` for the checkout's SQLite MCP server; never in the wheel."""

REQUIRED_DATA = [
    "sagaworks/py.typed",
    "sagaworks/mcp_servers/servers.toml",
    "sagaworks/client/api/templates/base.html",
    "sagaworks/client/api/static/console.css",
    "sagaworks/samples/orders/order.json",
    "sagaworks/samples/support/support.sql",
]


def _source(path: str) -> Path | None:
    """The repository file a wheel member ``sagaworks/...`` comes from (longest mapping)."""
    parts = path.split("/")
    for cut in range(len(parts) - 1, 0, -1):
        folder = PACKAGE_DIR.get(".".join(parts[:cut]))
        if folder is not None:
            return ROOT / folder / Path(*parts[cut:])
    return None


@pytest.fixture(scope="session")
def wheel() -> zipfile.ZipFile:
    return zipfile.ZipFile(sagaworks_wheel())


def _record(wheel: zipfile.ZipFile) -> list[str]:
    [record] = [n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")]
    return [row[0] for row in csv.reader(io.StringIO(wheel.read(record).decode())) if row]


def test_the_only_top_level_name_is_sagaworks(wheel: zipfile.ZipFile) -> None:
    version = PYPROJECT["project"]["version"]
    assert {path.split("/")[0] for path in _record(wheel)} == {"sagaworks", f"sagaworks-{version}.dist-info"}
    [top_level] = [n for n in wheel.namelist() if n.endswith(".dist-info/top_level.txt")]
    assert wheel.read(top_level).decode().split() == ["sagaworks"]


def test_every_member_keeps_its_repository_path(wheel: zipfile.ZipFile) -> None:
    """What ``parents[k]`` lookups rely on: a member's path under ``sagaworks/`` is its
    path under its mapped folder in the repository."""
    members = [p for p in _record(wheel) if p.startswith("sagaworks/")]
    assert members
    assert [p for p in members if (source := _source(p)) is None or not source.is_file()] == []


def test_every_module_and_the_package_data_are_inside(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert [p for p in REQUIRED_DATA if p not in names] == []
    top_folders = {package: folder for package, folder in PACKAGE_DIR.items() if "/" not in folder}
    modules = {
        f"{package.replace('.', '/')}/{path.relative_to(ROOT / folder).as_posix()}"
        for package, folder in top_folders.items()
        for path in (ROOT / folder).rglob("*.py")
        if not {"__pycache__", "node_modules"} & set(path.parts)
    }
    samples = {
        f"sagaworks/{path.relative_to(ROOT).as_posix()}"
        for path in (ROOT / "samples").rglob("*")
        if path.is_file() and path.relative_to(ROOT).as_posix() not in GENERATED
    }
    templates = {
        f"sagaworks/{path.relative_to(ROOT).as_posix()}"
        for pattern in ("client/api/templates/*", "client/api/static/*")
        for path in ROOT.glob(pattern)
    }
    assert sorted((modules | samples | templates) - names) == []


def test_files_make_install_builds_stay_out(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert [n for n in names if n.removeprefix("sagaworks/") in GENERATED] == []
    assert [n for n in names if "node_modules" in n or "__pycache__" in n] == []
