"""How the demo (and the history recorder) send a run its updates: never after a status
query, sent again while the validator refuses them because the run is not there yet."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from sagaworks import APPROVAL_REFUSED, DemoUpdate, refusal
from sagaworks.client.demo import send_demo_update


class RefusingHandle:
    """A run whose validator refuses ``refusals`` times before accepting; it must never be queried."""

    id = "ticket-demo"

    def __init__(self, refusals: int, error: BaseException | None = None) -> None:
        self.refusals, self.sent = refusals, 0
        self.error = error or refusal("ticket is new: it cannot be assigned")

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a status query right before an Update can make a history no replay reproduces")

    async def execute_update(self, name: str, arg: Any, **kwargs: Any) -> str:
        self.sent += 1
        if self.sent <= self.refusals:
            raise WorkflowUpdateFailedError(self.error)
        return f"{name} accepted"


async def test_an_update_refused_until_the_run_gets_there_is_sent_again_without_a_query() -> None:
    handle = RefusingHandle(refusals=3)
    answer = await send_demo_update(handle, DemoUpdate("assign", {"agent": "dana"}, when_step="open"))
    assert (answer, handle.sent) == ("assign accepted", 4)


async def test_an_approval_sent_before_it_is_pending_is_sent_again() -> None:
    # Routing's approve sent right after the start: the validator refuses it until the
    # request is classified and its approval pending.
    not_pending = ApplicationError("no approval is pending (approval: not reached yet)", type=APPROVAL_REFUSED)
    handle = RefusingHandle(refusals=2, error=not_pending)
    answer = await send_demo_update(handle, DemoUpdate("approve", {"approver": "alice"}, when_step="awaiting approval"))
    assert (answer, handle.sent) == ("approve accepted", 3)


async def test_other_failures_and_updates_without_a_step_are_not_sent_again() -> None:
    with pytest.raises(WorkflowUpdateFailedError):
        await send_demo_update(RefusingHandle(1), DemoUpdate("resolve", {"resolution": "done"}))
    crashed = RefusingHandle(1, ApplicationError("handler bug"))
    with pytest.raises(WorkflowUpdateFailedError):
        await send_demo_update(crashed, DemoUpdate("assign", {"agent": "dana"}, when_step="open"))
    assert crashed.sent == 1


class UnreachableOnce:
    """A run whose server is restarting at the first attempt: the connection fails."""

    id = "routing-demo"

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def execute_update(self, name: str, arg: Any, *, id: str) -> str:
        self.ids.append(id)
        if len(self.ids) == 1:
            raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")
        return f"{name} accepted"


async def test_a_lost_connection_sends_the_update_again_under_the_same_id() -> None:
    # The server may have taken the update before the connection broke: the same id lets
    # it apply the update once.
    handle = UnreachableOnce()
    assert await send_demo_update(handle, DemoUpdate("resolve", {"resolution": "done"})) == "resolve accepted"
    assert len(handle.ids) == 2 and handle.ids[0] == handle.ids[1]
