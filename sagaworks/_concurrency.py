"""Bounded fan-out for workflows: at most ``window`` operations in flight, in order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from temporalio import workflow

T = TypeVar("T")
R = TypeVar("R")


async def run_windowed(
    items: Iterable[T],
    start: Callable[[T], Awaitable[R]],
    *,
    window: int,
    on_result: Callable[[R], None],
    before_each: Callable[[], Awaitable[None]] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> list[T]:
    """Run ``start(item)`` for each item, ``window`` at a time; return the items not started.

    ``before_each`` is awaited before each start (a pause gate); ``stop`` is checked before
    each start and, once true, no more items start (the batch continues as new). On an
    error or a cancellation the operations in flight are cancelled and awaited before it
    propagates, so a compensation that follows never races a write still in flight.
    """
    queue: deque[T] = deque(items)
    # A dict keeps start order, so results are handled in the same order on every replay.
    in_flight: dict[asyncio.Task[R], None] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < window and not stop():
                if before_each is not None:
                    await before_each()
                in_flight[asyncio.ensure_future(start(queue.popleft()))] = None
            if not in_flight:
                break
            await workflow.wait(list(in_flight), return_when=asyncio.FIRST_COMPLETED)
            for task in [t for t in in_flight if t.done()]:
                del in_flight[task]
                on_result(task.result())
    except BaseException:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        raise
    return list(queue)


async def run_to_completion(operation: Awaitable[R], *, reraise_cancel: bool = True) -> R:
    """Await ``operation`` to its end even if the workflow is cancelled meanwhile.

    An activity that never heartbeats never hears of a cancellation, and the SDK hands its
    result back as if nothing happened; shielding it instead lets it finish, then the
    cancellation is raised (unless ``reraise_cancel`` is False), so what follows
    compensates a step that really took effect, never one still in flight.
    """
    task = asyncio.ensure_future(operation)
    interrupted: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as cancel:
            if not task.done():
                interrupted = cancel
    if interrupted is not None and reraise_cancel:
        if not task.cancelled():
            task.exception()  # the operation's own outcome is superseded by the cancellation
        raise interrupted
    return task.result()
