"""A parent of the worker's process pool, run as a process of its own by
tests/test_processes.py, which SIGKILLs it while the pool's processes start.

It imports the worker's module as the worker does, so its spawned children spend as long
re-importing it (the window in which a SIGKILLed parent sends them no signal)."""

from __future__ import annotations

import os
import time

import sagaworks.worker  # noqa: F401 - what the worker's children import as they start
from sagaworks.activities.processes import process_pool

if __name__ == "__main__":
    manager, pool = process_pool(2)
    pending = [pool.submit(os.getpid) for _ in range(2)]  # the pool starts its processes now
    print("pool starting", flush=True)
    time.sleep(600)
