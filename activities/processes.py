"""Helpers for the worker's process pool of CPU-bound activities."""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.managers import SyncManager

_PR_SET_PDEATHSIG = 1

POOL_MODULES = ("numpy", "yake", "pypdfium2")
"""What the pool's activities import when first used (text analysis, keywords, PDF parsing)."""

RENDER_MODULES = ("pandas", "altair", "vl_convert")
"""What a chart render uses: altair reads ``pandas`` from ``sys.modules`` when it is there, so
a render in one thread while another thread is still importing pandas fails ("partially
initialized module 'pandas' has no attribute 'Timestamp'"); imported before serving, pandas
is never seen half-imported."""


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (a no-op elsewhere), and exit
    at once if the parent already died.

    A worker killed with SIGKILL cannot shut its pool down; without this its pool and
    manager processes would live on as orphans. A spawned child runs this only after it
    has imported its parent's modules (seconds): a parent killed meanwhile sends no
    signal, so the child checks that its parent is still the one that started it, and
    leaves quietly if not (rather than wait for tasks forever, or fail with a traceback
    writing to the dead parent).
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(0)


def import_now(modules: Iterable[str]) -> None:
    """Import ``modules`` in this thread, before any task can import them concurrently."""
    for name in modules:
        importlib.import_module(name)


def pool_initializer() -> None:
    """Run in each pool process before its first task: die with the worker, import what
    the activities use (a task never waits on, or races with, a first import)."""
    die_with_parent()
    import_now(POOL_MODULES)


def process_pool(processes: int) -> tuple[SyncManager, ProcessPoolExecutor]:
    """The worker's pool of ``processes`` processes and the started manager of their
    shared state, both dying with the worker. Spawned, not forked: the SDK's runtime
    threads must not be copied into a child."""
    spawn = multiprocessing.get_context("spawn")
    manager = SyncManager(ctx=spawn)
    manager.start(die_with_parent)
    return manager, ProcessPoolExecutor(max_workers=processes, mp_context=spawn, initializer=pool_initializer)
