"""Contracts of durable MCP tool calls: what a workflow asks of a tool and gets back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sagaworks import StepStatus, StrictModel, Text

REFUSAL_KEY = "sagaworks_refusal"
"""Added by the worker's guard to each tool that list-tools returns: why the calling
workflow's family may not call it (it may write and is not allowed to), or None."""


class McpCallInput(StrictModel):
    """One tool call through Temporal (``saga mcp call SERVER TOOL --args JSON``)."""

    server: Text = Field(min_length=1, description="A server name of the MCP configuration.")
    tool: Text = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600, description="Per attempt.")


class McpToolOutput(StrictModel):
    """What a tool answered: its text content and, when it declares one, its structured result."""

    server: str
    tool: str
    text: str
    structured: Any = None


class McpCallStatus(StepStatus):
    """Progress of a one-tool run."""

    server: str
    tool: str


class McpListInput(StrictModel):
    """Servers whose tools to list (``saga mcp list``)."""

    servers: list[Text] = Field(min_length=1, max_length=50)


class McpToolInfo(BaseModel):
    """One tool as ``saga mcp list`` shows it."""

    name: str
    description: str
    required: list[str]
    optional: list[str]


class McpServerTools(BaseModel):
    """One server's tools, or why they could not be listed."""

    server: str
    tools: list[McpToolInfo] = Field(default_factory=list)
    error: str | None = None
