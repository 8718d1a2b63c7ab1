"""docker-compose.yml is valid and runs Temporal with the same tuning as the embedded server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from client.devserver import DYNAMIC_CONFIG

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed (.ci/run installs it)")
def test_compose_file_validates() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_compose_has_the_services_and_the_embedded_tuning() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"temporal", "temporal-db", "temporal-ui", "app-db", "worker"} <= compose["services"].keys()
    assert compose["services"]["worker"]["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    dynamic = yaml.safe_load((ROOT / "deploy" / "dynamicconfig.yaml").read_text())
    assert {key: entries[0]["value"] for key, entries in dynamic.items()} == DYNAMIC_CONFIG
