"""The bridge's payloads: node activity input/output, the status query, the restart memo.

Their JSON shape is part of recorded histories: fields may be added with defaults, never
renamed or removed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sagaworks._approval import ApprovalProgress
from sagaworks._models import StepStatus

RESTART_MEMO = "sagaworks.langgraph.restart"
"""The memo key of a run restarted from a node (:class:`GraphRestart`)."""


class NodeInput(BaseModel):
    """What a node (or undo) activity is given: the state before it, and the resume values
    of the interrupts it already passed (``Command(resume=...)``)."""

    state: dict[str, Any]
    resume: list[Any] = []
    completed: bool = True
    """For an undo: whether its node completed (``state`` is then the state after it);
    False when the node failed, fell back or never ran (``state`` is the state before it)."""


class NodeOutput(BaseModel):
    """What a node returned: its update, where a ``Command`` sends the run, or the values
    of the ``interrupt()`` it stopped at."""

    update: dict[str, Any] | None = None
    goto: list[str] = []
    interrupts: list[Any] = []


class NodeUpdate(BaseModel):
    """One node's update, in the order the run applied them (the status query's stream)."""

    node: str
    update: dict[str, Any] | None
    fallback: str | None = None
    """The node that ran instead, because ``breaker`` was open (None: the node itself ran)."""
    breaker: str | None = None


class GraphStatus(StepStatus, ApprovalProgress):
    """The ``status`` query of a graph run: the step runner's shape (steps are nodes), the
    approval's fields while an ``interrupt()`` waits, and the graph's own."""

    values: dict[str, Any] = {}
    """The state now."""
    updates: list[NodeUpdate] = []
    """Every node update so far."""
    interrupt: Any = None
    """The value the pending ``interrupt()`` was called with."""


class GraphRestart(BaseModel):
    """A run restarted from a node (its memo): where from, and the state it starts with."""

    source: str
    """``workflow_id/run_id`` of the run it restarts."""
    from_node: str
    state: dict[str, Any]
    """The state before ``from_node`` in the source run, with the edits applied."""
    edited: list[str] = []
    """The keys ``--set`` changed."""
