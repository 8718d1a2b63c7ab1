"""Retry policies and timeouts: the one place they are defined.

Each dependency class of the error taxonomy (see ``activities/errors.py``) gets named
activity options. Workflows spread them into ``execute_activity`` so every activity call
has a timeout and a retry policy, and nobody writes a retry loop.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio.common import Priority, RetryPolicy

# Error types that no retry can fix. Activities raise them as non-retryable
# ApplicationErrors already; listing them here also protects against an activity that
# forgets the flag.
NON_RETRYABLE_ERROR_TYPES = ["ValidationError", "StepAlreadyCompensated", "OutOfStock", "OrderAlreadyProcessed"]


class ActivityOptions(TypedDict, total=False):
    """The keyword arguments of ``workflow.execute_activity`` that a policy fixes."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy
    priority: Priority


DATABASE_WRITE = ActivityOptions(
    # A single short transaction; a worker that dies mid-call is noticed after 10 s.
    start_to_close_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=8,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""A forward saga step that writes to the application database."""

COMPENSATION = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=10),
    # Compensation must not give up on a transient fault: retry without an attempt cap
    # for a day, then the saga declares it failed and reports it.
    schedule_to_close_timeout=timedelta(days=1),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=0,
        non_retryable_error_types=["ValidationError"],
    ),
)
"""An undo step of a saga."""

MODEL = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=120),
    # The activity heartbeats while it waits (activities/liveness.py): a dead worker's
    # call is retried after 10 s, not after the full timeout.
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=5,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""An LLM call; rate limits (429) override the interval with Retry-After."""

PROCESSING = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=3,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""CPU-bound parsing and transformation of data the activity already has."""

MCP_LIST = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    heartbeat_timeout=timedelta(seconds=5),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=5,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES + ["MCPProtocolError"],
    ),
)
"""Listing an MCP server's tools (the plugin's activity; our guard heartbeats for it)."""


def mcp_call(seconds: float, attempts: int = 3) -> ActivityOptions:
    """One MCP tool call with a budget of ``seconds`` per attempt.

    Timeouts and transport failures are retried ``attempts`` times in all; a tool that
    answered ``isError`` (``McpToolError``) and bad arguments never are.
    """
    return ActivityOptions(
        start_to_close_timeout=timedelta(seconds=seconds),
        heartbeat_timeout=timedelta(seconds=5),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(milliseconds=200),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=5),
            maximum_attempts=attempts,
            non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES + ["McpToolError"],
        ),
    )


MCP_BUDGETS = {"weather": 5.0, "files": 10.0, "database": 15.0}
"""The aggregation's per-source budgets in seconds (weather per city), as activity timeouts."""

NOTIFY = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=10,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""A notification to a person (webhook or log): retried for a while, then given up on."""
