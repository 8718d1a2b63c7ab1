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
# "ValidationError" is not among them: it is what the SDK calls any uncaught pydantic error
# inside an activity, which is our bug and worth retrying; our bad-input errors are InvalidInput.
NON_RETRYABLE_ERROR_TYPES = ["InvalidInput", "StepAlreadyCompensated", "OutOfStock", "OrderAlreadyProcessed"]


class ActivityOptions(TypedDict, total=False):
    """The keyword arguments of ``workflow.execute_activity`` that a policy fixes."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy
    task_queue: str
    priority: Priority


class LocalActivityOptions(TypedDict, total=False):
    """The keyword arguments of ``workflow.execute_local_activity`` that a policy fixes: a
    local activity runs in the workflow's worker, so it takes no task queue, heartbeat or
    priority."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy


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
        non_retryable_error_types=["InvalidInput"],
    ),
)
"""An undo step of a saga."""

MODEL = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=120),
    # The activity heartbeats while it waits (activities/liveness.py): a dead worker's
    # call is retried after 10 s, not after the full timeout.
    heartbeat_timeout=timedelta(seconds=10),
    # Rate limits (429) and a spent budget are waited out for up to this long in all,
    # however many there are; the LLM gateway (sagaworks/_llm.py) falls back before a
    # wait would pass it, and at once on a refusal, an unusable answer or an open breaker.
    schedule_to_close_timeout=timedelta(minutes=30),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=0,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""An LLM call; rate limits (429) override the interval with Retry-After."""


def model_calls(count: int) -> ActivityOptions:
    """:data:`MODEL` for an activity that makes ``count`` LLM calls one after another: the
    time limits (one call's, and the time rate limits are waited out) grow with the calls."""
    if count == 1:
        return MODEL
    return ActivityOptions(
        **{
            **MODEL,
            "start_to_close_timeout": MODEL["start_to_close_timeout"] * count,
            "schedule_to_close_timeout": MODEL["schedule_to_close_timeout"] * count,
        }
    )


LLM_PASS = ActivityOptions(
    **{
        **MODEL,
        # An LLM pass that has an offline answer to fall back on (ticket classification,
        # the plans' semantic pass) waits out rate limits for two minutes, not thirty:
        # the rules' answer now beats the model's later.
        "schedule_to_close_timeout": timedelta(minutes=2),
        "start_to_close_timeout": timedelta(seconds=60),
    }
)
"""An optional LLM call whose failure the workflow answers with the offline result."""

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

TEXT_ANALYSIS = ActivityOptions(
    # An offline analysis of one text takes well under a second; a minute means it hangs.
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=5),
        maximum_attempts=3,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""A CPU-bound analysis of a text the activity is given (sentiment, keywords, search)."""

FEED_FETCH = ActivityOptions(
    # The workflow sets start_to_close_timeout per feed (the feed's own timeout + 5 s).
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=2,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""One remote feed: one retry, then the digest goes on without it (or with its cached copy)."""

FEED_SELECTION = ActivityOptions(
    # Reads every stored article of the digest's feeds (up to 10,000 a feed, 100 feeds),
    # a batch at a time: longer than one short transaction, retried like one.
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=DATABASE_WRITE["retry_policy"],
)
"""The news digest's selection over its feeds' stored articles."""


# The query family (NLP -> data -> viz). Attempts and intervals are per agent (each
# option's docstring gives them); the activities add jitter through next_retry_delay. A breaker that is open
# fails with a non-retryable CircuitOpen where the workflow has a fallback (nlp, viz) and
# with a retryable one delayed to the trial time where it has none (data).
QUERY_HEALTH = LocalActivityOptions(
    start_to_close_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(maximum_attempts=2, non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES),
)
"""Pre-flight health checks of the agents (each probe times out after 3 s)."""


def _agent_retries(attempts: int, first_seconds: float, max_seconds: float) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=first_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=max_seconds),
        maximum_attempts=attempts,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    )


QUERY_NLP = ActivityOptions(
    # An LLM call with a structured reply; the offline parser takes milliseconds.
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=_agent_retries(3, 1, 30),
)
"""NLP agent: 3 attempts, 1-30 s."""

QUERY_DATA = ActivityOptions(
    # The statement timeout (10 s by default) fires well before this.
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=_agent_retries(2, 2, 60),
)
"""Data agent: 2 attempts, 2-60 s."""

QUERY_VIZ = ActivityOptions(
    # Rendering a chart of at most 1000 rows takes well under a second.
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=_agent_retries(3, 1, 30),
)
"""Viz agent: 3 attempts, 1-30 s."""

LLM_RATE_ENV = "SAGAWORKS_LLM_RATE_PER_SECOND"
DEFAULT_LLM_RATE_PER_SECOND = 5.0
"""LLM activities started per second across every worker of the LLM task queue."""


def llm_task_queue(task_queue: str) -> str:
    """The rate-limited task queue of LLM calls beside ``task_queue`` (``sagaworks-llm``).

    Its own queue lets the server enforce one activities-per-second limit across all
    workers (eager dispatch never applies: it only serves the workflow's own queue).
    """
    return f"{task_queue}-llm"


PLAN_STAGE = ActivityOptions(
    # The workflow adds start_to_close_timeout from the run's input (stage_timeout_seconds).
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=10),
        # A stage's data faults are final at once; a transient one (memory) gets one
        # more try before the workflow maps it to a risk and mitigates.
        maximum_attempts=2,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""One stage of the plan analysis (parsing, OCR, analysis: CPU-bound, heartbeating)."""

PLAN_ALERT = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=10),
        # A webhook that stays down must not hold the analysis: three tries, then the
        # workflow logs the lost delivery and goes on.
        maximum_attempts=3,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
)
"""Delivering one plan alert (log, metric, optional webhook)."""

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
