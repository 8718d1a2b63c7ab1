"""The worker's child processes: they exit when the worker is SIGKILLed, even during its
start-up, without a traceback; pool processes import their heavy modules before a task."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio.client import Client

from sagaworks.activities.processes import POOL_MODULES, process_pool
from sagaworks.client.workers import workflow_pollers
from tests.workers import WorkerProcess

SPAWN_BEFORE_ITS_DATA = re.compile(
    r"Traceback \(most recent call last\):\n(?:  .*\n)*?.*in spawn_main\n(?:  .*\n)*EOFError: Ran out of input\n"
)
"""The one traceback no code of ours can prevent: a child spawned in the last milliseconds
before the SIGKILL, whose parent died before writing the child its start-up data, fails in
the standard library's ``spawn_main`` reading it, before any code of ours runs there."""


def _our_tracebacks(log: str) -> str:
    """``log`` without :data:`SPAWN_BEFORE_ITS_DATA`'s tracebacks."""
    return SPAWN_BEFORE_ITS_DATA.sub("", log)


def _modules_loaded(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in sys.modules]


def test_a_pool_process_imports_its_modules_before_its_first_task() -> None:
    manager, pool = process_pool(1)
    with manager, pool:
        assert pool.submit(_modules_loaded, POOL_MODULES).result(timeout=120) == list(POOL_MODULES)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie an orphan-reaping init has yet to collect."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _until_gone(pids: list[int], patience: float = 60) -> list[int]:
    """Wait for ``pids`` to exit; those still running after ``patience`` seconds (killed then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while (alive := [pid for pid in pids if _alive(pid)]) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    for pid in alive:  # leave nothing behind, whatever the verdict
        os.kill(pid, signal.SIGKILL)
    return alive


async def _children_appear(pid: int, patience: float = 60) -> list[int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while not (children := _children(pid)) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return children


async def test_pool_processes_exit_when_their_parent_is_sigkilled_while_they_start(tmp_path: Path) -> None:
    log = tmp_path / "parent.log"
    with open(log, "wb") as stderr:
        parent = subprocess.Popen(
            [sys.executable, "-m", "tests.pool_parent"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=Path(__file__).parents[1],
        )
    try:
        assert parent.stdout is not None
        assert await asyncio.to_thread(parent.stdout.readline) == b"pool starting\n", log.read_text()
        # The manager, the resource tracker and two pool processes still importing.
        children = _children(parent.pid)
        parent.kill()
        parent.wait(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert len(children) >= 3, children
    assert await _until_gone(children) == []
    assert "Traceback" not in log.read_text()


async def test_the_worker_sigkilled_during_start_up_leaves_no_process_and_no_traceback(
    dev_address: str, dev_client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = WorkerProcess(dev_address, f"start-up-{uuid.uuid4().hex[:8]}", f"sqlite:///{tmp_path}/app.db", log)
    worker.start()
    try:
        assert worker.process is not None
        children = await _children_appear(worker.process.pid)  # its manager, still starting
    finally:
        worker.kill()
    assert children
    assert await _until_gone(children) == []
    assert "Traceback" not in _our_tracebacks(log.read_text()), log.read_text()


async def test_the_worker_has_pandas_imported_before_it_polls(
    dev_address: str, dev_client: Client, tmp_path: Path
) -> None:
    """A chart render reads pandas from sys.modules: it must never find it half-imported."""
    queue = f"render-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(dev_address, queue, f"sqlite:///{tmp_path}/app.db", tmp_path / "worker.log")
    worker.start()
    try:
        assert worker.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while not await workflow_pollers(dev_client, queue) and loop.time() < deadline:
            await asyncio.sleep(0.2)
        assert await workflow_pollers(dev_client, queue), (tmp_path / "worker.log").read_text()
        assert "/pandas/_libs/" in Path(f"/proc/{worker.process.pid}/maps").read_text()
    finally:
        worker.terminate()
