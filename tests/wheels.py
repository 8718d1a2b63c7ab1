"""The sagaworks wheel, built once per test session from this checkout.

Built without build isolation (nothing is downloaded) from a copy of what setuptools reads:
the checkout's own ``build/`` could carry files since deleted, and stays untouched.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]


@functools.cache
def sagaworks_wheel() -> Path:
    """Build the wheel as a release would (no editable install) and return its path."""
    tree = Path(tempfile.mkdtemp(prefix="sagaworks-wheel-source-"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    skip = shutil.ignore_patterns("__pycache__", "node_modules")
    for folder in sorted({f.split("/")[0] for f in PACKAGE_DIR.values()}):
        shutil.copytree(ROOT / folder, tree / folder, ignore=skip)
    out = Path(tempfile.mkdtemp(prefix="sagaworks-wheel-"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(tree)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(tree, ignore_errors=True)
    [built] = out.glob("sagaworks-*.whl")
    return built
