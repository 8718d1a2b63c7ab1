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


def test_compose_runs_the_query_agents_and_points_the_worker_at_them() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    worker_env = services["worker"]["environment"]
    for name, port in (("nlp", 8001), ("data", 8002), ("viz", 8003)):
        agent = services[f"{name}-agent"]
        assert agent["command"][:4] == ["python", "-m", "activities.query.remote", name]
        assert agent["command"][-1] == str(port) and f":{port}/health" in agent["healthcheck"]["test"][-1]
        assert worker_env[f"{name.upper()}_AGENT_URL"] == f"http://{name}-agent:{port}"
    assert "COPY contracts ./contracts" in (ROOT / "Dockerfile").read_text()
