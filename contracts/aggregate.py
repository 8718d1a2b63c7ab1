"""Contracts of the ``aggregate`` family: one question answered from several MCP sources.

Which sources apply is decided from the question alone (:func:`plan_sources`), so the
workflow stays deterministic and the decision is visible before anything runs: weather for
the cities named, files for the search terms of a question about files or logs, the
database for the tables named (or an explicit read-only query).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from sagaworks import StepStatus, StrictModel, Text

KNOWN_CITIES = ("Seattle", "San Francisco", "London", "New York", "Tokyo", "Sydney", "Paris")
"""Cities a question may name (the weather server has stations for some of them)."""
DATABASE_TABLES = ("customers", "products", "incidents")
"""Tables of the sample support database a question may name."""
FILE_WORDS = ("file", "files", "log", "logs", "document", "documents")
"""Words that make the filesystem relevant to a question."""
STOP_WORDS = frozenset(
    "the a an and or but in on at to for of with what which about from this that these those "
    "there their have has are was were show find give tell me our any all please weather".split()
)
SOURCES = ("weather", "files", "database")
MAX_ITEM_RESULT_BYTES = 16 * 1024
"""The largest answer (bytes of its JSON) the result keeps for one item; a larger one fails
that item, naming the limit. The result holds at most 31 items (20 cities, 10 terms, one
query), so it stays about half a MiB at most, well inside one history payload."""

ItemState = Literal["pending", "running", "completed", "failed"]
SourceState = Literal["pending", "running", "completed", "partial", "failed", "skipped"]


class AggregateInput(StrictModel):
    """A question, and optionally the sources' items spelled out instead of inferred.

    Each item's answer is kept up to :data:`MAX_ITEM_RESULT_BYTES` (16 KiB of JSON); a larger
    one fails that item (``McpResultTooLarge``) and the others stand."""

    request_id: Text = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    question: Text = Field(min_length=1, max_length=2000)
    cities: list[Annotated[Text, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=20, description="At most 20 cities of 100 characters, one weather call each."
    )
    search_terms: list[Annotated[Text, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=10, description="At most 10 terms of 100 characters, one file search each."
    )
    sql: Text | None = Field(
        default=None,
        max_length=2000,
        description=f"A read-only SELECT; an answer over {MAX_ITEM_RESULT_BYTES // 1024} KiB of JSON fails that item.",
    )


class ItemReport(BaseModel):
    """One call of a source: a city, a search term or a query."""

    item: str
    state: ItemState = "pending"
    result: Any = None
    error: str | None = None


class SourceReport(BaseModel):
    """One source: its state, why it was skipped, and every item's outcome."""

    source: str
    state: SourceState = "pending"
    reason: str | None = None
    items: list[ItemReport] = Field(default_factory=list)

    def settle(self) -> None:
        """Set the source's state from its items' once they have all ended."""
        ok = sum(item.state == "completed" for item in self.items)
        self.state = "completed" if ok == len(self.items) else "partial" if ok else "failed"


class AggregateResult(BaseModel):
    """Every source's outcome; partial results are kept, failures listed per item."""

    question: str
    sources: list[SourceReport]
    completed: list[str]
    partial: list[str]
    failed: list[str]
    skipped: list[str]
    summary: str


class AggregateStatus(StepStatus):
    """Progress, with each source's state live."""

    sources: list[SourceReport]


def _words(question: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9_-]*", question.lower())


def plan_sources(request: AggregateInput) -> list[SourceReport]:
    """The three sources with their items, or skipped with the reason."""
    question = request.question.lower()
    cities = request.cities if request.cities is not None else [c for c in KNOWN_CITIES if c.lower() in question]
    weather = SourceReport(source="weather", items=[ItemReport(item=c) for c in cities])
    if not cities:
        weather.state, weather.reason = "skipped", "the question names no city"

    words = _words(request.question)
    if request.search_terms is not None:
        terms = request.search_terms
    elif any(word in FILE_WORDS for word in words):
        ignore = STOP_WORDS | set(FILE_WORDS) | set(DATABASE_TABLES) | {w for c in KNOWN_CITIES for w in _words(c)}
        terms = list(dict.fromkeys(w for w in words if len(w) > 3 and w not in ignore))[:3]
    else:
        terms = []
    files = SourceReport(source="files", items=[ItemReport(item=t) for t in terms])
    if not terms:
        files.state, files.reason = "skipped", "the question asks about no files or logs"

    if request.sql is not None:
        queries = [request.sql]
    else:
        queries = [f"SELECT * FROM {table} LIMIT 20" for table in DATABASE_TABLES if table in words]
    database = SourceReport(source="database", items=[ItemReport(item=q) for q in queries])
    if not queries:
        database.state, database.reason = "skipped", "the question names no table and gives no query"
    return [weather, files, database]
