"""A workflow that asks the LLM gateway many questions at once, for testing the gateway
through Temporal: its waits are Temporal's retries (next_retry_delay), as in a worker."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from sagaworks import LLM


class ProbeInput(BaseModel):
    prompts: list[str]
    deadline_seconds: float = 120
    """The schedule-to-close timeout of each call: the step's deadline."""
    attempts: int = 0
    """Attempts of each call (0: until the deadline)."""
    max_tokens: int = 8


class ProbeCall(BaseModel):
    prompt: str
    max_tokens: int


class ProbeAnswer(BaseModel):
    value: str
    provider: str
    fallback: str | None
    attempt: int
    worker: str


FALLBACK = "the offline answer"


class ProbeActivities:
    def __init__(self, llm: LLM, worker: str = "worker") -> None:
        self._llm = llm
        self._worker = worker

    @activity.defn
    def ask_model(self, call: ProbeCall) -> ProbeAnswer:
        answer = self._llm.ask(
            "probe", call.prompt, max_tokens=call.max_tokens, parse=lambda raw: raw, fallback=lambda: FALLBACK
        )
        return ProbeAnswer(
            value=answer.value,
            provider=answer.provider,
            fallback=answer.fallback,
            attempt=activity.info().attempt,
            worker=self._worker,
        )


@workflow.defn
class LLMProbeWorkflow:
    @workflow.run
    async def run(self, request: ProbeInput) -> list[ProbeAnswer]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        ProbeActivities.ask_model,
                        ProbeCall(prompt=prompt, max_tokens=request.max_tokens),
                        start_to_close_timeout=timedelta(seconds=30),
                        schedule_to_close_timeout=timedelta(seconds=request.deadline_seconds),
                        retry_policy=RetryPolicy(
                            initial_interval=timedelta(milliseconds=100),
                            maximum_interval=timedelta(seconds=1),
                            maximum_attempts=request.attempts,
                        ),
                    )
                    for prompt in request.prompts
                )
            )
        )
