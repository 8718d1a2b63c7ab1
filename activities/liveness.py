"""Heartbeats for long blocking calls, so Temporal notices a dead worker in seconds.

Without them an activity lost with its worker is retried only when its start-to-close
timeout runs out (minutes for a large PDF or a slow model); with them, when its heartbeat
timeout does (``policies.PROCESSING`` / ``policies.MODEL``).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 2.0


@contextmanager
def keep_alive(every: float = HEARTBEAT_EVERY_SECONDS, details: Callable[[], Sequence[Any]] = tuple) -> Iterator[None]:
    """Heartbeat from a helper thread while the block runs (a no-op outside activities).

    Each heartbeat carries ``details()``: a heartbeat replaces the details of the one
    before, so an activity that records its progress in them (a retry reads them from
    ``activity.info().heartbeat_details``) passes how to read it here.
    """
    if not activity.in_activity():
        yield
        return
    stop = threading.Event()
    context = contextvars.copy_context()  # the activity's context, for activity.heartbeat

    def beat() -> None:
        while not stop.wait(every):
            context.run(activity.heartbeat, *details())

    thread = threading.Thread(target=beat, name="keep-alive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
