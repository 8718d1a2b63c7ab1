"""A failure is rendered with its kind by name wherever people read it: a timeout says
which timeout ran out (StartToClose...), never the number of the SDK's ``TimeoutType``."""

from __future__ import annotations

from types import SimpleNamespace

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError, TimeoutType

from sagaworks import failure_text
from sagaworks.client.runs import failure_chain, failure_lines
from sagaworks.client.trace import _Builder
from sagaworks.workflows.fallback import _reason


def _timed_out_activity() -> ActivityError:
    """What a workflow sees when an activity's StartToClose timeout ran out on its last attempt."""
    timeout = TimeoutError("activity StartToClose timeout", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    error = ActivityError(
        "Activity task timed out",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="fetch_feed",
        activity_id="1",
        retry_state=RetryState.TIMEOUT,
    )
    error.__cause__ = timeout
    return error


def test_a_fallback_reason_names_the_timeout_type() -> None:
    assert _reason(_timed_out_activity()) == "TimeoutError (StartToClose): activity StartToClose timeout"


def test_an_mcp_failure_text_names_the_timeout_type() -> None:
    assert failure_text(_timed_out_activity()) == "TimeoutError (StartToClose): activity StartToClose timeout"


def test_a_failure_chain_names_the_timeout_type() -> None:
    lines = failure_lines(failure_chain(_timed_out_activity()))
    assert lines[-1].strip() == "TimeoutError (StartToClose): activity StartToClose timeout"


def test_an_application_error_without_a_type_is_named_by_its_class_not_none() -> None:
    error = _timed_out_activity()
    error.__cause__ = ApplicationError("welcome mail refused", non_retryable=True)
    chain = failure_chain(error)
    assert chain[-1]["type"] == "ApplicationError"
    assert failure_lines(chain)[-1].strip() == "ApplicationError: welcome mail refused"
    typed = ApplicationError("welcome mail refused", type="WelcomeRefused")
    assert failure_lines(failure_chain(typed)) == ["WelcomeRefused: welcome mail refused"]


async def test_a_trace_names_the_timeout_type() -> None:
    """The trace (and the postmortem built on it) decode the server's failure proto."""
    converter = DataConverter.default
    failure = Failure()
    converter.failure_converter.to_failure(_timed_out_activity(), converter.payload_converter, failure)
    builder = _Builder(SimpleNamespace(data_converter=converter), payloads=False, depth=0)  # type: ignore[arg-type]  # the builder uses only the client's data converter
    assert await builder.error(failure) == ("TimeoutError (StartToClose)", "activity StartToClose timeout")
