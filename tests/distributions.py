"""A distribution made visible to ``importlib.metadata`` as an installer would leave it in
site-packages: the tests' way to register families through entry points without pip."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_dist_info(site: Path, name: str, entry_points: Mapping[str, str]) -> Path:
    """``NAME-0.1.dist-info`` under ``site`` declaring ``entry_points`` in the
    ``sagaworks.families`` group; returns ``site`` (to put on ``sys.path``)."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[sagaworks.families]\n" + "".join(f"{entry} = {target}\n" for entry, target in entry_points.items())
    )
    return site
