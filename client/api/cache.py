"""A short-lived cache for answers that are costly to derive (metrics read many histories)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class ShortCache:
    """Keeps each answer for ``seconds`` (0: no caching); callers asking for an answer
    being computed share that computation. A failure is not kept."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        if self.seconds <= 0:
            return await compute()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            future = entry[1]
        else:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}  # drop expired answers
            future = asyncio.ensure_future(compute())
            self._entries[key] = (now + self.seconds, future)
            future.add_done_callback(lambda done: self._forget_failure(key, done))
        # A caller that goes away does not cancel the computation others wait on.
        return await asyncio.shield(future)

    def _forget_failure(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        failed = future.cancelled() or future.exception() is not None
        if failed and key in self._entries and self._entries[key][1] is future:
            del self._entries[key]
