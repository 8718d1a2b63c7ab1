"""Background processes of `saga dev up`: reused only when started with the same settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sagaworks.client import devserver


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(devserver, "STATE_DIR", tmp_path)
    return tmp_path


# "worker" in the command line marks it as ours (devserver.running_pid checks that).
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)", "worker"]


def test_a_worker_with_other_settings_is_restarted_not_reused(state_dir: Path) -> None:
    try:
        first, outcome = devserver.start_background("worker", SLEEPER, settings=devserver.settings_fingerprint({}))
        assert outcome == "started"
        same, outcome = devserver.start_background("worker", SLEEPER, settings=devserver.settings_fingerprint({}))
        assert (same, outcome) == (first, "reused")
        other = devserver.settings_fingerprint({"DATABASE_URL": "postgresql://elsewhere/app"})
        second, outcome = devserver.start_background("worker", SLEEPER, settings=other)
        assert outcome == "restarted" and second != first
        assert not devserver._alive(first)
    finally:
        devserver.stop_background("worker")


def test_the_fingerprint_covers_settings_and_ignores_the_rest() -> None:
    base = {"PATH": "/bin", "SAGAWORKS_DOCUMENT_ROOTS": "/docs"}
    assert devserver.settings_fingerprint(base) == devserver.settings_fingerprint({**base, "PATH": "/usr/bin"})
    assert devserver.settings_fingerprint(base) != devserver.settings_fingerprint(
        {**base, "SAGAWORKS_DOCUMENT_ROOTS": "/x"}
    )
    assert "/docs" not in devserver.settings_fingerprint(base)
    # Where the query agents are (`saga dev up` points the worker at its viz agent).
    assert devserver.settings_fingerprint(base) != devserver.settings_fingerprint(
        {**base, "VIZ_AGENT_URL": "http://127.0.0.1:8003"}
    )


def test_the_dev_worker_calls_the_viz_agent_with_the_dev_breaker_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGAWORKS_VIZ_AGENT_PORT", "18003")
    assert devserver.viz_agent_worker_env({}) == {
        "VIZ_AGENT_URL": "http://127.0.0.1:18003",
        "SAGAWORKS_BREAKER_VIZ": devserver.DEV_BREAKER_VIZ,
    }
    # A threshold the user configured wins over the dev profile.
    assert devserver.viz_agent_worker_env({"SAGAWORKS_BREAKER_VIZ": "5/60"})["SAGAWORKS_BREAKER_VIZ"] == "5/60"
    from sagaworks._breakers import BreakerConfig, breaker_configs_from_env

    assert breaker_configs_from_env(devserver.viz_agent_worker_env({}))["viz"] == BreakerConfig(3, 10)


def test_a_viz_agent_whose_port_is_taken_is_reported_and_the_worker_draws_charts(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from sagaworks.client.cli.services import serve_viz_agent

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("SAGAWORKS_VIZ_AGENT_PORT", str(taken.getsockname()[1]))
        assert serve_viz_agent() == {}
    assert "Viz agent not served (viz-agent exited; see" in capsys.readouterr().out
    assert devserver.running_pid(devserver.VIZ_AGENT) is None


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dev_up_refuses_a_taken_port_names_it_and_starts_nothing(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess

    saga = str(Path(sys.executable).parent / "saga")
    env = {**os.environ, "SAGAWORKS_STATE_DIR": str(tmp_path / "state")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = subprocess.run(
            [
                saga,
                "dev",
                "up",
                "--no-worker",
                "--port",
                str(port),
                "--ui-port",
                str(_free_port()),
                "--api-port",
                str(_free_port()),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    said = up.stdout + up.stderr
    assert up.returncode == 1, said
    assert f"Port {port} (the Temporal frontend) is already in use" in said
    assert "`saga dev down` in the project that started it" in said and "make stop" in said and "--port PORT" in said
    assert "pid" not in said
    assert not list((tmp_path / "state").glob("*.pid"))


def test_a_process_that_exits_at_start_is_reported_with_its_log(state_dir: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('bind: address already in use'); sys.exit(1)", "worker"]
    devserver.start_background("worker", command)
    with pytest.raises(devserver.DevStackError, match="bind: address already in use") as failed:
        devserver.wait_until_listening("worker", _free_port())
    assert "worker exited at start" in str(failed.value)
    with pytest.raises(devserver.DevStackError, match="worker exited at start"):
        devserver.wait_until_logged("worker", "Worker polling")


def test_the_viz_agent_is_served_only_where_the_query_family_is(monkeypatch: pytest.MonkeyPatch) -> None:
    import sagaworks

    monkeypatch.setattr(sagaworks, "registry", lambda: sagaworks._registry.discover([]))
    assert not devserver.viz_agent_available()
