"""saga stats / GET /api/metrics: per activity type figures derived from histories."""

from __future__ import annotations

import asyncio
import json
import uuid

from temporalio.client import Client

from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.client.replay import load_history
from sagaworks.client.stats import activity_calls, activity_stats
from sagaworks.contracts.parallel_analysis import ParallelAnalysisInput
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES
from sagaworks.workflows.parallel_analysis import ParallelAnalysisWorkflow
from tests.test_replay import HISTORIES

TEXT = json.loads((SAMPLES / "parallel-analysis/billing-retrospective.json").read_text())["text"]


def test_a_recorded_history_yields_each_activity_with_its_outcome_attempts_and_sizes() -> None:
    calls = activity_calls(load_history(HISTORIES / "parallel_analysis_partial.json"))
    by_type = {c.activity_type: c for c in calls}
    assert set(by_type) == {
        "analyse_sentiment",
        "extract_keywords",
        "summarise_text",
        "detect_language",
        "lead_summary",
    }
    assert (by_type["analyse_sentiment"].outcome, by_type["analyse_sentiment"].attempts) == ("failed", 3)
    assert (by_type["lead_summary"].outcome, by_type["lead_summary"].attempts) == ("completed", 1)
    assert all(c.input_bytes > len(TEXT) // 2 for c in calls)  # each carried the text
    assert by_type["extract_keywords"].output_bytes > 0 and by_type["analyse_sentiment"].output_bytes == 0
    assert by_type["analyse_sentiment"].seconds >= 1.0  # two backoff intervals: 0.5 s + 1 s


def test_local_activities_count_with_the_time_of_the_task_that_ran_them() -> None:
    # The order steps run as local activities by default: one marker each, no timing of their own.
    calls = activity_calls(load_history(HISTORIES / "order_completed-20261124-2.json"))
    assert [c.activity_type for c in calls] == [
        "check_order_items",
        "create_customer_account",
        "charge_payment",
        "send_notification",
        "reserve_inventory",
        "create_shipping_label",
    ]
    assert all(c.outcome == "completed" and c.attempts == 1 and c.seconds > 0 for c in calls)
    assert all(c.output_bytes > 0 for c in calls[1:])  # each step returns its reference


async def test_stats_of_a_family_count_every_call_and_its_success(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4):
        for fail in ([], ["keywords"]):
            await dev_client.execute_workflow(
                ParallelAnalysisWorkflow.run,
                ParallelAnalysisInput(text=TEXT, fail=fail),  # type: ignore[arg-type]  # fail lists step names: a list of literals
                id=f"stats-{uuid.uuid4()}",
                task_queue=task_queue,
            )

    async def figures() -> dict:
        while True:  # visibility is eventually consistent
            found = await activity_stats(
                dev_client, family=registry().family("parallel-analysis"), query=f"TaskQueue = '{task_queue}'"
            )
            if found["workflows"] == 2:
                return found
            await asyncio.sleep(0.2)

    found = await asyncio.wait_for(figures(), 60)
    rows = {row["activity_type"]: row for row in found["activities"]}
    assert (rows["extract_keywords"]["count"], rows["extract_keywords"]["success_rate"]) == (2, 0.5)
    assert rows["extract_keywords"]["retries"] == 2
    assert (rows["frequent_keywords"]["count"], rows["frequent_keywords"]["success_rate"]) == (1, 1.0)
    assert (rows["detect_language"]["count"], rows["detect_language"]["succeeded"]) == (2, 2)
    for row in rows.values():
        assert row["min_seconds"] <= row["avg_seconds"] <= row["max_seconds"]
        assert row["min_seconds"] <= row["p95_seconds"] <= row["max_seconds"]
