"""Run the real worker (python -m worker) as a child process, as an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


class WorkerProcess:
    """``python -m worker`` against a given server, task queue and database."""

    def __init__(self, address: str, task_queue: str, database_url: str, log_file: Path, **env: str) -> None:
        self.command = [sys.executable, "-m", "sagaworks.worker", "--address", address, "--task-queue", task_queue]
        self.env = {**os.environ, "DATABASE_URL": database_url, "SAGAWORKS_LOG_LEVEL": "INFO", **env}
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
