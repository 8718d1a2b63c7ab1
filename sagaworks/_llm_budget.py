"""The LLM gateway's requests and tokens budget, shared by every worker through the
application database.

Providers limit requests *and* tokens per minute; Temporal's task-queue rate limit only
counts activities. The budget is a log of calls in the ``llm_budget_calls`` table: a call
reserves one request and its estimated tokens before it is sent, and settles to the
tokens the provider reports once it is answered. A reservation fits when the calls still
*live* in the window (answered less than a window ago, or not answered yet) leave room
for it; reservations of one budget are serialised by a lock on its ``llm_budgets`` row
(SQLite: the write lock every transaction takes; PostgreSQL: the row's lock).

Why a log and not a counter per fixed window: a provider's own window is not aligned with
ours, and a request reaches it some time after we reserved it. A call stays live from its
reservation until a window after its answer, so whenever the provider received it, every
call that reached the provider within one window of it was live when the later of the two
was reserved: no window the provider measures ever holds more than the budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sagaworks._db import Database

_metadata = MetaData()
budgets_table = Table(
    "llm_budgets",
    _metadata,
    Column("name", String(300), primary_key=True),
    Column("touched_at", Float, nullable=False),
)
calls_table = Table(
    "llm_budget_calls",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("budget", String(300), nullable=False, index=True),
    Column("reserved_at", Float, nullable=False),
    Column("answered_at", Float),
    Column("tokens", Integer, nullable=False),
)


@dataclass(frozen=True)
class LLMBudget:
    """What one provider endpoint and model may be sent per window, across every worker.

    ``SAGAWORKS_LLM_RPM`` and ``SAGAWORKS_LLM_TPM`` set it per minute (0: no limit).
    """

    requests: int = 30
    """Requests per window; 0 for no limit."""
    tokens: int = 6000
    """Tokens (prompt and completion) per window; 0 for no limit."""
    window_seconds: float = 60.0

    @property
    def unlimited(self) -> bool:
        return not self.requests and not self.tokens


class BudgetSpent(Exception):
    """No room in the budget now: room comes back in ``wait`` seconds."""

    def __init__(self, wait: float, reason: str) -> None:
        super().__init__(reason)
        self.wait = wait


class OverBudget(Exception):
    """A single call larger than the whole budget: no wait makes it fit."""


class BudgetLedger:
    """Reservations against :class:`LLMBudget` in the application database."""

    def __init__(self, db: Database, budget: LLMBudget, call_timeout: float) -> None:
        """``call_timeout``: a reservation never settled (its worker died) counts as
        answered this long after it was made."""
        self._db = db
        self.budget = budget
        self._timeout = call_timeout
        self._known: set[str] = set()
        _metadata.create_all(db.engine)

    def _ensure(self, name: str) -> None:
        if name in self._known:
            return
        try:
            with self._db.engine.begin() as conn:
                if not conn.execute(select(budgets_table.c.name).where(budgets_table.c.name == name)).first():
                    conn.execute(insert(budgets_table).values(name=name, touched_at=time.time()))
        except IntegrityError:
            pass  # another process created it first
        self._known.add(name)

    def reserve(self, name: str, tokens: int) -> int:
        """Reserve a request of ``tokens`` in budget ``name``; the reservation's id.

        Raises :class:`BudgetSpent` (with the wait until enough live calls leave the
        window) or :class:`OverBudget`."""
        budget = self.budget
        if budget.tokens and tokens > budget.tokens:
            raise OverBudget(
                f"a call of about {tokens} tokens is over the budget of "
                f"{budget.tokens} tokens per {budget.window_seconds:g} s"
            )
        self._ensure(name)
        c = calls_table.c
        window = budget.window_seconds
        with self._db.engine.begin() as conn:
            now = time.time()
            # The lock that serialises the reservations of this budget across processes.
            conn.execute(update(budgets_table).where(budgets_table.c.name == name).values(touched_at=now))
            leaves_at = func.coalesce(c.answered_at, c.reserved_at + self._timeout) + window
            conn.execute(delete(calls_table).where(c.budget == name, leaves_at <= now))
            live = conn.execute(select(c.answered_at, c.tokens).where(c.budget == name)).all()
            used_requests, used_tokens = len(live), sum(row.tokens for row in live)
            if self._fits(used_requests, used_tokens, tokens):
                inserted = conn.execute(insert(calls_table).values(budget=name, reserved_at=now, tokens=tokens))
                key = inserted.inserted_primary_key
                if key is None:
                    raise RuntimeError(f"budget {name}: the database returned no key for the reserved call")
                return int(key[0])
        # Calls in flight are assumed answered now: a retry then finds them settled.
        leaving = sorted(((row.answered_at or now) + window, row.tokens) for row in live)
        wait = window
        for when, freed in leaving:
            used_requests -= 1
            used_tokens -= freed
            if self._fits(used_requests, used_tokens, tokens):
                wait = when - now
                break
        raise BudgetSpent(
            max(0.1, wait),
            f"budget {name} spent: {len(live)} requests and {sum(r.tokens for r in live)} tokens in the last "
            f"{window:g} s (budget {budget.requests or 'unlimited'} requests, {budget.tokens or 'unlimited'} tokens)",
        )

    def _fits(self, requests: int, tokens: int, more: int) -> bool:
        budget = self.budget
        return (not budget.requests or requests + 1 <= budget.requests) and (
            not budget.tokens or tokens + more <= budget.tokens
        )

    def settle(self, reservation: int, tokens: int | None) -> None:
        """The call was answered (or failed): it leaves the window a window from now;
        ``tokens``, when the provider reported them, replace the estimate."""
        values: dict[str, float | int] = {"answered_at": time.time()}
        if tokens is not None:
            values["tokens"] = tokens
        with self._db.engine.begin() as conn:
            conn.execute(update(calls_table).where(calls_table.c.id == reservation).values(**values))


def estimate_tokens(prompt: str, max_tokens: int) -> int:
    """An upper estimate of a call's tokens: a token per three characters of the prompt
    (English averages about four) plus every completion token the call allows."""
    return math.ceil(len(prompt) / 3) + max_tokens
