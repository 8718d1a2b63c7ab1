"""``saga approve|reject``: decide the pending approval of a run of any family that declares
one (a Temporal Update)."""

from __future__ import annotations

from typing import Annotated

import typer

from sagaworks.client.cli.output import fail, out, run_async

WorkflowId = Annotated[str, typer.Argument(metavar="WORKFLOW_ID", help="Workflow id.", show_default=False)]
Approver = Annotated[str, typer.Option("--approver", help="Who decides (recorded in the result).", show_default=False)]


def _send(workflow_id: str, decision: str, approver: str, reason: str | None) -> None:
    from sagaworks.client.approvals import DecisionRefused, decide
    from sagaworks.client.connection import connect

    async def send() -> None:
        try:
            answer = await decide(await connect(), workflow_id, decision, approver, reason)  # type: ignore[arg-type]  # the two commands pass "approve" or "reject"
        except DecisionRefused as refused:
            raise fail(f"{workflow_id} refused the decision: {refused}") from None
        out.print(f"{answer.workflow_id}: {answer.decision} by {answer.approver}", markup=False)

    run_async(send())


def approve(workflow_id: WorkflowId, approver: Approver) -> None:
    """Approve what a run waits for (any family that declares an approval)."""
    _send(workflow_id, "approve", approver, None)


def reject(
    workflow_id: WorkflowId,
    approver: Approver,
    reason: Annotated[str, typer.Option("--reason", help="Why (required).", show_default=False)],
) -> None:
    """Reject what a run waits for, saying why."""
    _send(workflow_id, "reject", approver, reason)


def register(app: typer.Typer) -> None:
    """Add ``approve`` and ``reject`` to the ``saga`` command."""
    app.command()(approve)
    app.command()(reject)
