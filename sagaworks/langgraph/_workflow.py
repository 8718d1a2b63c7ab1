"""Workflow side: LangGraph's loop, decided in the workflow, each node an activity.

One superstep at a time: the nodes due run as activities (a ``Send`` fan-out in
parallel), their updates merge into the state with the graph's reducers, then the fixed
edges, the conditional edges (their path functions run here, on the state, so they must be
pure) and any ``Command(goto=...)`` decide the next nodes. The state lives in the
workflow and every node's input and output in the history: no checkpointer. An
``interrupt()`` waits on the engine's :class:`~sagaworks.Approval` (deadline, escalation)
and the node runs again with the decision as its ``Command(resume=...)`` value. Each
completed node with an undo registers it on the engine's :class:`~sagaworks.Saga`, which
runs them in reverse when a node fails or the run is cancelled.

These workflows run outside the SDK's sandbox (``sandboxed=False``): LangGraph's objects
(edges, reducers, path functions) are the user's and are read in place, as
``temporalio-langgraph`` passes LangGraph through its sandbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from langgraph.constants import END
from langgraph.graph import StateGraph
from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from sagaworks import policies
from sagaworks._approval import Approval, ApprovalUpdates, Escalation
from sagaworks._models import StepTiming
from sagaworks._pause import Pausable
from sagaworks._saga import Saga
from sagaworks.langgraph._activities import node_activity_name, undo_activity_name
from sagaworks.langgraph._graph import Task, first_tasks, merge, next_tasks
from sagaworks.langgraph._models import RESTART_MEMO, GraphRestart, GraphStatus, NodeInput, NodeOutput, NodeUpdate

DEFAULT_NODE_OPTIONS = policies.PROCESSING
"""A node's timeouts and retry policy unless its graph declares its own."""


@dataclass(frozen=True)
class InterruptPolicy:
    """How an ``interrupt()`` waits: who decides, until when, and who is asked next."""

    deadline: timedelta = timedelta(hours=24)
    approvers: Sequence[str] = ()
    escalations: Sequence[Escalation] = ()


@dataclass(frozen=True)
class GraphSpec:
    """Everything a graph's workflow reads, fixed at registration."""

    name: str
    builder: StateGraph[Any, Any, Any, Any]
    output_model: type[BaseModel] | None
    node_options: dict[str, policies.ActivityOptions] = field(default_factory=dict)
    undo_options: policies.ActivityOptions = field(default_factory=lambda: policies.COMPENSATION)
    undo_nodes: frozenset[str] = frozenset()
    interrupt: InterruptPolicy = InterruptPolicy()
    recursion_limit: int = 25


class GraphWorkflow(ApprovalUpdates, Pausable):
    """The workflow every registered graph runs (one subclass per graph, see :func:`workflow_class`)."""

    spec: ClassVar[GraphSpec]

    def __init__(self) -> None:
        self.approval = Approval()
        self._saga = Saga()
        self._values: dict[str, Any] = {}
        self._updates: list[NodeUpdate] = []
        self._timings: list[StepTiming] = []
        self._running: list[str] = []
        self._interrupt: Any = None
        self._restart: GraphRestart | None = None
        self._deciding = asyncio.Lock()

    @workflow.query
    def status(self) -> GraphStatus:
        """Where the run stands: nodes done, running, awaiting approval, the state, the updates."""
        state = self._saga.state if self._saga.state != "running" else self._state
        current = ", ".join(self._running) or None
        if current and self.approval.awaiting:
            current = f"{current}: awaiting approval"
        return GraphStatus(
            state=state,
            current_step=current,
            done=len(self._timings),
            total=len(self.spec.builder.nodes),
            plan=list(self.spec.builder.nodes),
            completed_steps=[t.step for t in self._timings],
            compensations=self._saga.records,
            steps=list(self._timings),
            restarted_from=self._restart.source if self._restart else None,
            values=dict(self._values),
            updates=list(self._updates),
            interrupt=self._interrupt,
            **self.approval.progress().model_dump(),
        )

    async def _run_graph(self, arg: BaseModel) -> Any:
        spec = self.spec
        memo = workflow.memo_value(RESTART_MEMO, None)
        self._restart = None if memo is None else GraphRestart.model_validate(memo)
        if self._restart is not None:
            if self._restart.from_node not in spec.builder.nodes:
                raise ApplicationError(
                    f"restart from node {self._restart.from_node!r}: the graph's nodes are {', '.join(spec.builder.nodes)}",
                    type="InvalidInput", non_retryable=True,
                )
            self._values = dict(self._restart.state)
            tasks: list[Task] = [(self._restart.from_node, None)]
        else:
            self._values = arg.model_dump(mode="json")
            tasks = first_tasks(spec.builder, self._values)
        async with self._saga:
            supersteps = 0
            while tasks:
                supersteps += 1
                if supersteps > spec.recursion_limit:
                    raise ApplicationError(
                        f"recursion limit of {spec.recursion_limit} supersteps reached", type="GraphRecursionError",
                        non_retryable=True,
                    )
                if self._paused:
                    await self._unpaused()
                before = dict(self._values)
                # Every node of the superstep ends (and registers its undo) before a failure
                # of one of them compensates: an undo of a sibling still running is not lost.
                settled = await asyncio.gather(*(self._node(node, sent, before) for node, sent in tasks),
                                               return_exceptions=True)
                failure = next((r for r in settled if isinstance(r, BaseException)), None)
                if failure is not None:
                    raise failure
                outputs = [r for r in settled if isinstance(r, NodeOutput)]
                ran: list[str] = []
                gotos: list[str] = []
                for (node, _), out in zip(tasks, outputs):
                    if out.update:
                        merge(spec.builder, self._values, out.update)
                    self._updates.append(NodeUpdate(node=node, update=out.update))
                    ran.append(node)
                    gotos.extend(g for g in out.goto if g != END)
                following = next_tasks(spec.builder, ran, self._values)
                tasks = following + [(g, None) for g in dict.fromkeys(gotos) if (g, None) not in following]
        await workflow.wait_condition(workflow.all_handlers_finished)
        if spec.output_model is None:
            return dict(self._values)
        return spec.output_model.model_validate(self._values)

    async def _node(self, node: str, sent: dict[str, Any] | None, before: dict[str, Any]) -> NodeOutput:
        spec = self.spec
        given = dict(sent if sent is not None else before)
        options = spec.node_options.get(node, DEFAULT_NODE_OPTIONS)
        started = workflow.now()
        self._running.append(node)
        self._saga.current_step = node
        resume: list[Any] = []
        try:
            while True:
                out: NodeOutput = await workflow.execute_activity(
                    node_activity_name(spec.name, node),
                    NodeInput(state=given, resume=resume),
                    result_type=NodeOutput,
                    summary=node,
                    **options,
                )
                if len(out.interrupts) <= len(resume):
                    break
                resume.append(await self._decide(out.interrupts[len(resume)]))
        finally:
            self._running.remove(node)
        self._timings.append(StepTiming(step=node, outcome="done", started_at=started, finished_at=workflow.now()))
        if node in spec.undo_nodes:
            after = dict(given)
            merge(spec.builder, after, out.update or {})
            self._saga.add_compensation(
                undo_activity_name(spec.name, node), NodeInput(state=after), step=node, options=spec.undo_options
            )
        return out

    async def _decide(self, value: Any) -> dict[str, Any]:
        """Wait for approve/reject of an ``interrupt(value)``; the node's resume value."""
        async with self._deciding:  # interrupts of parallel nodes are asked one after the other
            if self.approval.state in ("approved", "rejected"):
                self.approval = Approval()  # a second interrupt asks again
            self._interrupt = value
            policy = self.spec.interrupt
            outcome = await self.approval.wait(policy.deadline, approvers=policy.approvers,
                                               escalations=policy.escalations)
            self._interrupt = None
        return {"approved": outcome.decision == "approved", "approver": outcome.decided_by, "reason": outcome.reason}


def workflow_class(spec: GraphSpec, input_model: type[BaseModel]) -> type[GraphWorkflow]:
    """A workflow class of its own for ``spec`` (type ``langgraph-NAME``), whose run takes
    ``input_model`` and returns the output model (or the state as a dict)."""

    async def run(self: GraphWorkflow, arg: Any) -> Any:
        return await self._run_graph(arg)

    run.__annotations__ = {"arg": input_model, "return": spec.output_model or dict}
    camel = "".join(part.capitalize() for part in spec.name.replace("_", "-").split("-"))
    run.__name__, run.__qualname__ = "run", f"{camel}Graph.run"  # a module-level class to the SDK
    cls = type(f"{camel}Graph", (GraphWorkflow,), {"spec": spec, "run": workflow.run(run), "__module__": __name__})
    return workflow.defn(name=f"langgraph-{spec.name}", sandboxed=False)(cls)

