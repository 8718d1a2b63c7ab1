"""docker-compose.yml is valid and runs Temporal with the same tuning as the embedded server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sagaworks.client.devserver import DYNAMIC_CONFIG

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed (.ci/run installs it)"
)
def test_compose_file_validates() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
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
        assert agent["command"][:4] == ["python", "-m", "sagaworks.activities.query.remote", name]
        assert agent["command"][-1] == str(port) and f":{port}/health" in agent["healthcheck"]["test"][-1]
        assert worker_env[f"{name.upper()}_AGENT_URL"] == f"http://{name}-agent:{port}"
    assert "COPY contracts ./contracts" in (ROOT / "Dockerfile").read_text()


def _build_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_image_carries_the_mcp_servers_of_the_default_config() -> None:
    """Each server of mcp_servers/servers.toml is installed at build time where {root}
    points in the image (/app, the root of its editable install), with the pins
    `make install` uses; the host's copies never enter the build context."""
    import re
    import tomllib

    *builders, final = _build_stages()
    # Debian trixie's nodejs (20.x): the filesystem server's dependencies need node >= 20.
    assert all(stage[0].startswith("FROM python:3.11-slim-trixie") for stage in _build_stages())
    assert "WORKDIR /app" in final and final[-1] == 'CMD ["python", "-m", "sagaworks.worker"]'
    runs = [step for step in final if step.startswith("RUN ")]
    # {root} is the package's root: /app only for an editable install from /app; with every
    # family's extra (the database URL is PostgreSQL's).
    assert any(re.search(r"\bpip install (--no-cache-dir )?-e '\.\[all\]'", run) for run in runs)
    # node for the filesystem server; npm only in a build stage.
    assert any("apt-get install" in run and re.search(r"\bnodejs\b", run) and " npm" not in run for run in runs)
    # The SQLite server's own environment, with the Makefile's pins.
    makefile = (ROOT / "Makefile").read_text()
    pins = re.findall(r"'((?:mcp-server-sqlite|mcp)==[^']+)'", makefile)
    assert sorted(pins) == ["mcp-server-sqlite==2025.4.25", "mcp==1.30.0"]
    assert any(".venv-mcp-sqlite/bin/pip install" in run and all(f"'{pin}'" in run for pin in pins) for run in runs)
    # The filesystem server from npm's lockfile, copied where servers.toml runs it.
    [node_stage] = [stage for stage in builders if any("npm ci" in step for step in stage)]
    assert "COPY mcp_servers/package.json mcp_servers/package-lock.json ./" in node_stage
    assert any(
        step.startswith("COPY --from=") and step.endswith("/app/mcp_servers/node_modules ./mcp_servers/node_modules")
        for step in final
    )
    # The sample database the SQLite server serves, built from support.sql after samples/ is copied.
    build_db = next(
        i for i, step in enumerate(final) if "samples/support/support.sql" in step and step.startswith("RUN ")
    )
    assert build_db > final.index("COPY samples ./samples")
    servers = tomllib.loads((ROOT / "mcp_servers" / "servers.toml").read_text())["servers"]
    assert servers["database"]["command"] == "{root}/.venv-mcp-sqlite/bin/mcp-server-sqlite"
    assert "{root}/samples/support/support.db" in servers["database"]["args"]
    assert servers["files"]["args"][0].startswith("{root}/mcp_servers/node_modules/")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv-mcp-sqlite", "mcp_servers/node_modules", "samples/support/support.db"} <= set(ignored)
