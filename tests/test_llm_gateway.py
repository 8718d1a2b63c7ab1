"""The LLM gateway against a local fake chat server that enforces its own limits: the
budget of requests and tokens across every call, Retry-After, the shared breaker and the
declared fallback; Groq's and the OpenAI-compatible provider on the same server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from sagaworks import (
    LLM,
    BreakerConfig,
    Breakers,
    Database,
    LLMBudget,
    LLMConfigError,
    LLMSettings,
    llm_budget_from_env,
    llm_settings_from_env,
)
from sagaworks._llm_budget import BudgetLedger, BudgetSpent
from tests.fake_chat_server import Limits, api_error, echo, failing, fake_chat_server, openai_settings
from tests.llm_probe import FALLBACK, LLMProbeWorkflow, ProbeActivities, ProbeAnswer, ProbeInput


@asynccontextmanager
async def _probe_worker(client: Client, task_queue: str, *gateways: LLM) -> AsyncIterator[None]:
    """A worker per gateway, all polling ``task_queue``, each on a client of its own (as
    separate worker processes are)."""
    async with AsyncExitStack() as stack:
        for n, llm in enumerate(gateways):
            if n:
                client = await Client.connect(
                    client.service_client.config.target_host,
                    namespace=client.namespace,
                    data_converter=client.data_converter,
                )
            threads = stack.enter_context(ThreadPoolExecutor(max_workers=32))
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=task_queue,
                    workflows=[LLMProbeWorkflow],
                    activities=[ProbeActivities(llm, f"worker {n}").ask_model],
                    activity_executor=threads,
                    max_concurrent_activities=32,
                )
            )
        yield


async def _ask(client: Client, task_queue: str, request: ProbeInput) -> list[ProbeAnswer]:
    return await client.execute_workflow(
        LLMProbeWorkflow.run, request, id=f"llm-probe-{uuid.uuid4()}", task_queue=task_queue
    )


async def test_fifty_calls_at_once_across_two_workers_never_exceed_the_requests_or_the_tokens_budget(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    # The provider's limits (enforced by the server with 429s) are the gateway's budget.
    limits = Limits(requests=10, tokens=150, window_seconds=1.0)
    # Prompts of 20 to 100 characters: the tokens bind as often as the requests do.
    prompts = [f"w{n} " + "x" * (16 + 20 * (n % 5)) for n in range(50)]
    budget = LLMBudget(requests=limits.requests, tokens=limits.tokens, window_seconds=limits.window_seconds)
    # Two workers, each with its own gateway and connections to the application database.
    other_db = Database(db.url)
    with fake_chat_server(echo, limits) as server:
        gateways = [LLM(database, settings=openai_settings(server), budget=budget) for database in (db, other_db)]
        async with _probe_worker(dev_client, task_queue, *gateways):
            answers = await _ask(dev_client, task_queue, ProbeInput(prompts=prompts))
    other_db.dispose()
    assert [a.value for a in answers] == [f"ok w{n}" for n in range(50)]
    assert {(a.provider, a.fallback) for a in answers} == {("openai:test-model", None)}
    most_requests, most_tokens = server.busiest_window()
    print(
        f"budget {limits.requests} requests and {limits.tokens} tokens per {limits.window_seconds:g} s; "
        f"the server saw at most {most_requests} requests and {most_tokens} tokens in any such window; "
        f"{len(server.accepted)} accepted, {len(server.refused)} refused; "
        f"{sum(a.attempt > 1 for a in answers)} calls waited for the budget (retried)"
    )
    assert {a.worker for a in answers} == {"worker 0", "worker 1"}
    assert len(server.accepted) == 50 and not server.refused
    assert most_requests <= limits.requests and most_tokens <= limits.tokens
    # The budget bound: calls had to wait for it (else the test proves nothing).
    assert any(a.attempt > 1 for a in answers)


async def test_a_retry_after_is_honoured_the_next_attempt_not_before_it(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    def respond(body, index):
        if index == 0:
            return api_error(429, "slow down", {"retry-after": "1.5"})
        return echo(body, index)

    with fake_chat_server(respond) as server:
        llm = LLM(db, settings=openai_settings(server), budget=LLMBudget(requests=0, tokens=0))
        async with _probe_worker(dev_client, task_queue, llm):
            [answer] = await _ask(dev_client, task_queue, ProbeInput(prompts=["hello there"]))
    assert (answer.value, answer.fallback, answer.attempt) == ("ok hello", None, 2)
    (first, _), (second, _) = server.requests
    assert second - first >= 1.5


async def test_a_5xx_storm_opens_the_breaker_and_the_fallback_runs_saying_so(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    breakers = Breakers(db, {"llm": BreakerConfig(3, 60)})
    with fake_chat_server(failing(503)) as server:
        llm = LLM(db, settings=openai_settings(server), breakers=breakers)
        async with _probe_worker(dev_client, task_queue, llm):
            storm = await _ask(dev_client, task_queue, ProbeInput(prompts=[f"q{n}" for n in range(6)], attempts=3))
            seen = len(server.requests)
            [after] = await _ask(dev_client, task_queue, ProbeInput(prompts=["later"], attempts=3))
    assert breakers.status("llm").state == "open"
    assert all(a.value == FALLBACK and a.provider == "offline" and a.fallback for a in storm)
    assert any(a.fallback.startswith("breaker llm open") for a in storm if a.fallback)
    # Once open, no call reaches the provider: the next one falls back at once.
    assert len(server.requests) == seen
    assert (
        (after.value, after.attempt) == (FALLBACK, 1)
        and after.fallback
        and after.fallback.startswith("breaker llm open")
    )


async def test_a_budget_spent_past_the_step_deadline_falls_back(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    with fake_chat_server(echo) as server:
        llm = LLM(db, settings=openai_settings(server), budget=LLMBudget(requests=1, tokens=0, window_seconds=600))
        async with _probe_worker(dev_client, task_queue, llm):
            [first] = await _ask(dev_client, task_queue, ProbeInput(prompts=["first"], deadline_seconds=20))
            [second] = await _ask(dev_client, task_queue, ProbeInput(prompts=["second"], deadline_seconds=20))
    assert (first.value, first.fallback) == ("ok first", None)
    assert (
        second.value == FALLBACK and second.fallback and "budget" in second.fallback and "deadline" in second.fallback
    )
    assert len(server.requests) == 1


def test_the_groq_and_the_openai_compatible_providers_talk_to_the_same_server(db: Database) -> None:
    with fake_chat_server(echo, Limits(requests=10, tokens=1000, window_seconds=60)) as server:
        groq = LLM(db, settings=LLMSettings("groq", "groq-model", server.base_url, "gsk-test"))
        openai = LLM(db, settings=openai_settings(server))
        by_groq = groq.complete("probe", "alpha beta", max_tokens=16)
        by_openai = openai.complete("probe", "gamma delta", max_tokens=16, json_mode=True)
    assert (by_groq.text, by_groq.provider) == ("ok alpha", "groq:groq-model")
    assert (by_openai.text, by_openai.provider) == ("ok gamma", "openai:test-model")
    # The tokens each answer reports are the server's count (what the budget settles to).
    assert [by_groq.tokens, by_openai.tokens] == [tokens for _, tokens in server.accepted]
    groq_body, openai_body = (body for _, body in server.requests)
    assert (groq_body["model"], groq_body["max_tokens"]) == ("groq-model", 16)
    assert (openai_body["model"], openai_body["response_format"]) == ("test-model", {"type": "json_object"})


def test_without_a_model_the_fallback_is_the_answer_and_no_fallback_is_reported(db: Database) -> None:
    answer = LLM(db, settings=LLMSettings()).ask("probe", "hi", parse=str, fallback=lambda: "offline")
    assert (answer.value, answer.provider, answer.fallback) == ("offline", "offline", None)


def test_the_budget_holds_for_reservations_from_many_processes_at_once(db_url: str) -> None:
    """The ledger alone, on SQLite and PostgreSQL: three gateways (one database engine each,
    as three workers have) reserve from 12 threads at once; whenever the provider receives a
    call between its reservation and its answer, no window holds more than the budget."""
    budget = LLMBudget(requests=5, tokens=120, window_seconds=0.5)
    databases = [Database(db_url) for _ in range(3)]
    ledgers = [BudgetLedger(database, budget, call_timeout=5) for database in databases]
    calls: list[tuple[float, float, int]] = []  # reserved, answered, tokens (as settled)
    lock = threading.Lock()

    def worker(n: int) -> None:
        ledger = ledgers[n % 3]
        for k in range(4):
            estimate = 20 + 10 * ((n + k) % 4)
            while True:  # the test plays Temporal's part: wait as told, then try again
                try:
                    reservation = ledger.reserve("test", estimate)
                    break
                except BudgetSpent as spent:
                    time.sleep(spent.wait)
            reserved = time.time()
            time.sleep(0.01 * (k + 1))  # the call
            ledger.settle(reservation, estimate - 5)
            with lock:
                calls.append((reserved, time.time(), estimate - 5))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in databases:
        database.dispose()
    assert len(calls) == 48
    # The provider may see each call at any time between its reservation and its answer:
    # check the two extremes.
    for arrival in (lambda c: c[0], lambda c: c[1]):
        times = sorted((arrival(c), c[2]) for c in calls)
        for start, _ in times:
            inside = [tokens for at, tokens in times if start <= at < start + budget.window_seconds]
            assert len(inside) <= budget.requests and sum(inside) <= budget.tokens


def test_each_family_may_have_its_own_model_and_a_bad_variable_is_named(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "GROQ_API_KEY": "gsk-test",
        "SAGAWORKS_LLM_NEWS_DIGEST_PROVIDER": "openai",
        "SAGAWORKS_LLM_NEWS_DIGEST_BASE_URL": "http://127.0.0.1:8080/v1/",
        "SAGAWORKS_LLM_NEWS_DIGEST_MODEL": "qwen2.5-7b",
        "SAGAWORKS_LLM_RPM": "60",
        "SAGAWORKS_LLM_TPM": "0",
    }
    news = llm_settings_from_env("news-digest", env)
    assert (news.provider, news.base_url, news.model, news.api_key) == (
        "openai",
        "http://127.0.0.1:8080/v1",
        "qwen2.5-7b",
        None,
    )
    assert llm_settings_from_env("blog", env).name == "groq:llama-3.3-70b-versatile"
    assert llm_budget_from_env(env) == LLMBudget(requests=60, tokens=0, window_seconds=60)
    with pytest.raises(
        LLMConfigError, match="SAGAWORKS_LLM_BLOG_PROVIDER='gpt': expected one of offline, groq, openai"
    ):
        llm_settings_from_env("blog", {**env, "SAGAWORKS_LLM_BLOG_PROVIDER": "gpt"})
    with pytest.raises(LLMConfigError, match="SAGAWORKS_LLM_TPM='lots'"):
        llm_budget_from_env({"SAGAWORKS_LLM_TPM": "lots"})
    # A worker's gateway checks every family's variables when it starts.
    for key, value in {**env, "SAGAWORKS_LLM_ROUTING_PROVIDER": "openai"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(LLMConfigError, match="needs SAGAWORKS_LLM_ROUTING_BASE_URL and SAGAWORKS_LLM_ROUTING_MODEL"):
        LLM(db)


def test_the_worker_names_an_unusable_llm_variable_and_exits_before_connecting(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SAGAWORKS_LLM_NEWS_DIGEST_PROVIDER": "openai",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sagaworks.worker", "--address", "127.0.0.1:1", "--connect-seconds", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "needs SAGAWORKS_LLM_NEWS_DIGEST_BASE_URL and SAGAWORKS_LLM_NEWS_DIGEST_MODEL" in done.stdout + done.stderr
