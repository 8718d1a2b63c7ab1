"""The blog family: research -> outline -> draft -> review, offline (extractive and saying
so) and through the LLM gateway against a local fake of an OpenAI-compatible server, with
the offline composer as each step's fallback."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import ActivityEnvironment

from sagaworks import LLM, BreakerConfig, Breakers, LLMSettings
from sagaworks.activities.db import Database
from sagaworks.activities.search import SearchActivities
from sagaworks.activities.text_analysis import split_sentences
from sagaworks.activities.writing import WritingActivities, post_quality
from sagaworks.contracts.blog import BlogInput, WritingInput
from sagaworks.contracts.search import SearchInput
from sagaworks.worker import running_worker
from sagaworks.workflows.blog import BlogWorkflow
from tests.corpus import RESEARCH, store_documents
from tests.fake_chat_server import api_error, completion, fake_chat_server
from tests.orders import wait_for_status

TOPIC = "Retries, idempotency and replay in durable workflows"


async def test_the_offline_post_is_extracted_from_cited_passages_and_says_so(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await dev_client.start_workflow(
            BlogWorkflow.run, BlogInput(topic=TOPIC), id=f"blog-{uuid.uuid4()}", task_queue=task_queue
        )
        result = await asyncio.wait_for(handle.result(), 90)
        status = await handle.query(BlogWorkflow.status)

    assert result.writer.provider == "offline" and "nothing is generated" in result.writer.method
    assert result.markdown.startswith(f"# {TOPIC}\n")
    assert len(re.findall(r"^## ", result.markdown, re.MULTILINE)) >= 5  # intro, sections, takeaways, sources
    # Honest extraction: every sentence of the body is a sentence of the passage it cites.
    sources = {c.number: c for c in result.citations}
    corpus = " ".join(" ".join(p.read_text().split()) for p in RESEARCH)
    body = result.markdown.split("## Sources")[0]
    sentences = re.findall(r"([^.!?\n]+[.!?]+)\s*\[(\d+)\]", body)
    assert sentences
    for sentence, number in sentences:
        assert int(number) in sources
        assert sentence.strip().lstrip("- ") in corpus
    assert "lorem" not in result.markdown.lower()
    assert result.word_count > 100 and result.quality == post_quality(TOPIC, result.markdown)
    assert result.quality.cited_paragraphs == 1.0
    assert (status.done, status.total, status.state) == (4, 4, "completed")
    # No model configured: the composer is the writer by choice, not a fallback.
    assert result.fallbacks == [] and result.writer.fallback is None


async def test_a_topic_nothing_stored_mentions_fails_naming_the_field(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await dev_client.start_workflow(
            BlogWorkflow.run,
            BlogInput(topic="Gardening tomatoes in winter"),
            id=f"blog-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 60)
    assert failure.value.cause.message.startswith("topic: no stored passage matches")  # type: ignore[attr-defined]  # the failure's cause is typed BaseException


async def test_cancel_while_paused_between_stages(dev_client: Client, db: Database, task_queue: str) -> None:
    store_documents(db)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await dev_client.start_workflow(
            BlogWorkflow.run, BlogInput(topic=TOPIC), id=f"blog-{uuid.uuid4()}", task_queue=task_queue
        )
        await handle.signal(BlogWorkflow.pause)
        await wait_for_status(handle, lambda s: s.state == "paused", query=BlogWorkflow.status, timeout=60)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


def test_each_step_asks_the_blogs_model_with_the_numbered_passages_and_an_empty_answer_falls_back(db: Database) -> None:
    store_documents(db)
    passages = SearchActivities(db).search_chunks(SearchInput(query=TOPIC, top_k=3)).hits
    replies = ["# T\n\n## Introduction\n## Retry Budgets [1]\n## Key Takeaways", "# T\n\nDraft text [1].", ""]

    def respond(_body, index):
        return 200, {}, completion(replies[index]) if index < 3 else api_error(500, "unexpected")

    env = ActivityEnvironment()
    with fake_chat_server(respond) as server:
        writing = WritingActivities(LLM(db, settings=LLMSettings("openai", "test-model", f"{server.base_url}/v1")))
        request = WritingInput(topic=TOPIC, passages=passages)
        outline = env.run(writing.outline_post, request)
        assert outline.text.startswith("# T") and outline.fallback is None
        draft = request.model_copy(update={"previous": "# T\n\n## Retry Budgets [1]\n\nDraft text [1].\n"})
        written = env.run(writing.draft_post, request.model_copy(update={"previous": "OUTLINE"}))
        assert (written.text, written.fallback) == ("# T\n\nDraft text [1].\n", None)
        post = env.run(writing.review_post, draft)
        prompt = server.prompt_of(1)
    assert "OUTLINE" in prompt and f"[1] {passages[0].text}" in prompt
    assert split_sentences(prompt)
    # The model answered nothing to the review: the offline composer reviewed, saying why.
    assert post.writer.provider == "offline" and post.writer.fallback and "empty answer" in post.writer.fallback
    assert post.markdown.startswith("# T")


async def test_with_the_llm_breaker_open_the_post_is_the_offline_composers_and_says_so(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    store_documents(db)
    breakers = Breakers(db, {"llm": BreakerConfig(1, 60)})
    with fake_chat_server(lambda _body, _index: api_error(503, "overloaded")) as server:
        llm = LLM(db, settings=LLMSettings("openai", "test-model", f"{server.base_url}/v1"), breakers=breakers)
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2, settings=[llm]):
            handle = await dev_client.start_workflow(
                BlogWorkflow.run, BlogInput(topic=TOPIC), id=f"blog-{uuid.uuid4()}", task_queue=task_queue
            )
            result = await asyncio.wait_for(handle.result(), 120)
    assert breakers.status("llm").state == "open"
    assert result.writer.provider == "offline" and "nothing is generated" in result.writer.method
    assert result.writer.fallback and result.writer.fallback.startswith("breaker llm open")
    assert result.citations and "## Sources" in result.markdown
    # Every step the composer wrote says so, with its reason, in the result: the outline's
    # 503 opened the breaker, which the draft and the review then found open.
    assert [f.split(":")[0] for f in result.fallbacks] == ["outline", "draft", "review"]
    assert all("HTTP 503" in f or "breaker llm open" in f for f in result.fallbacks), result.fallbacks
