"""Contracts of durable MCP tool calls: what a workflow asks of a tool and gets back."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, field_validator

from sagaworks import StepStatus, StrictModel, Text

REFUSAL_KEY = "sagaworks_refusal"
"""Added by the worker's guard to each tool that list-tools returns: why the calling
workflow's family may not call it (it may write and is not allowed to), or None."""
MAX_ARGUMENT_BYTES = 64 * 1024
"""The largest ``arguments`` of a tool call, in bytes of their JSON."""
DEFAULT_MAX_RESULT_BYTES = 256 * 1024
"""What a tool call may return unless its server sets ``max_result_bytes`` (enforced by the
worker's ``McpCallGuard``)."""


class McpCallInput(StrictModel):
    """One tool call through Temporal (``saga mcp call SERVER TOOL --args JSON``)."""

    server: Text = Field(min_length=1, description="A server name of the MCP configuration.")
    tool: Text = Field(min_length=1)
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description=f"The tool's arguments, at most {MAX_ARGUMENT_BYTES // 1024} KiB of JSON. "
        "Its answer may be at most "
        f"the server's max_result_bytes ({DEFAULT_MAX_RESULT_BYTES // 1024} KiB unless the MCP configuration says "
        "otherwise): a larger one fails the call with McpResultTooLarge.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600, description="Per attempt.")

    @field_validator("arguments")
    @classmethod
    def _arguments_bounded(cls, arguments: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(arguments, separators=(",", ":"), default=str).encode())
        if size > MAX_ARGUMENT_BYTES:
            raise ValueError(
                f"{size:,} bytes of JSON, over the {MAX_ARGUMENT_BYTES:,}-byte limit of a tool's arguments"
            )
        return arguments


class McpToolOutput(StrictModel):
    """What a tool answered: its text content and, when it declares one, its structured result
    (at most the server's ``max_result_bytes`` in all, :data:`DEFAULT_MAX_RESULT_BYTES` by
    default)."""

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
