"""Circuit breakers shared by every worker process, kept in the application database.

One breaker per dependency, under any name (the built-in families use ``nlp``, ``data``,
``viz``, ``llm`` and ``plan-<stage>``). The state machine is pybreaker's; its state lives in
the ``circuit_breakers`` table through :class:`DatabaseStorage`, so a breaker that one worker opens is open for all.
Transitions are conditional UPDATEs: of two processes racing to open a breaker or to
claim its half-open trial, exactly one changes the row, and only that one logs and
counts the transition.

Breakers live in activities only: they read clocks and the database, which workflow code
must not (the workflow's side, a fallback when a breaker is open, is ``sagaworks.guarded``).
Every breaker is configurable by name with ``SAGAWORKS_BREAKER_<NAME>=<failures>/<recovery
seconds>``, the name upper-cased with each run of other characters than letters and digits
made one ``_`` (``billing-api`` -> ``SAGAWORKS_BREAKER_BILLING_API=5/60``); without it a
breaker has its configured thresholds, else the built-in names' figures in
:data:`DEFAULT_BREAKERS`, else :data:`DEFAULT_BREAKER`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybreaker
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks._circuit import CIRCUIT_OPEN
from sagaworks._db import Database
from sagaworks.contracts.breakers import BreakerStatus

log = logging.getLogger("sagaworks.breakers")

T = TypeVar("T")


@dataclass(frozen=True)
class BreakerConfig:
    """When a breaker opens and how long it stays open before a trial call."""

    fail_max: int
    """Consecutive failures that open it."""
    reset_timeout: float
    """Seconds from opening to the first trial call."""


DEFAULT_BREAKERS: dict[str, BreakerConfig] = {
    "nlp": BreakerConfig(5, 60),
    "data": BreakerConfig(3, 120),
    "viz": BreakerConfig(5, 60),
    "llm": BreakerConfig(5, 60),
}
"""The built-in breakers' thresholds: the query agents' (nlp 5 failures / 60 s, data 3 / 120 s,
viz 5 / 60 s, the data agent's database recovering more slowly) and the LLM provider's."""

DEFAULT_BREAKER = BreakerConfig(5, 60)
"""The thresholds of a breaker configured nowhere."""

ENV_PREFIX = "SAGAWORKS_BREAKER_"
MAX_NAME_LENGTH = 32
"""Names are the key of the ``circuit_breakers`` table."""


def breaker_env_key(name: str) -> str:
    """The environment variable that configures breaker ``name``."""
    return ENV_PREFIX + re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").upper()


def _checked_name(name: str) -> str:
    if not name.strip() or len(name) > MAX_NAME_LENGTH or not re.search(r"[0-9A-Za-z]", name):
        raise ValueError(f"breaker name {name!r}: 1 to {MAX_NAME_LENGTH} characters, at least one letter or digit")
    return name


def breaker_config(
    name: str, configured: Mapping[str, BreakerConfig] | None = None, environ: Mapping[str, str] | None = None
) -> BreakerConfig:
    """Breaker ``name``'s thresholds: its environment variable (:func:`breaker_env_key`),
    else ``configured[name]``, else :data:`DEFAULT_BREAKERS`, else :data:`DEFAULT_BREAKER`."""
    env = os.environ if environ is None else environ
    key = breaker_env_key(_checked_name(name))
    raw = env.get(key)
    if not raw:
        return (configured or {}).get(name) or DEFAULT_BREAKERS.get(name) or DEFAULT_BREAKER
    return _parsed(key, raw)


def _parsed(key: str, raw: str) -> BreakerConfig:
    try:
        failures, seconds = raw.split("/")
        config = BreakerConfig(int(failures), float(seconds))
    except ValueError:
        raise SystemExit(f"{key}={raw!r}: expected <failures>/<recovery seconds>, e.g. 5/60") from None
    if config.fail_max < 1 or config.reset_timeout <= 0:
        raise SystemExit(f"{key}={raw!r}: failures must be >= 1 and seconds > 0")
    return config


def breaker_configs_from_env(environ: Mapping[str, str] | None = None) -> dict[str, BreakerConfig]:
    """:data:`DEFAULT_BREAKERS` with their ``SAGAWORKS_BREAKER_<NAME>`` overrides applied."""
    return {name: breaker_config(name, environ=environ) for name in DEFAULT_BREAKERS}


_metadata = MetaData()
breakers_table = Table(
    "circuit_breakers",
    _metadata,
    Column("name", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("successes", Integer, nullable=False, default=0),
    Column("fail_max", Integer, nullable=False),
    Column("reset_timeout", Float, nullable=False),
    Column("opened_at", DateTime(timezone=True)),
    Column("last_transition_at", DateTime(timezone=True)),
    Column("trial_started_at", DateTime(timezone=True)),
    Column("trips", Integer, nullable=False, default=0),
)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time we store is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _transitions_counter() -> Any:
    return activity.metric_meter().create_counter(
        "sagaworks_breaker_transitions", "Circuit breaker state changes, by breaker and new state"
    )


class DatabaseStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker's storage interface over one row of ``circuit_breakers``, for one call.

    pybreaker reads the state (twice) and the failure counter around every call. They
    come from one snapshot of the row, taken at the first read and again after each
    write of this storage: a successful call through a closed breaker costs one SELECT
    instead of three (each a transaction that takes SQLite's write lock). Every write is
    still a conditional UPDATE against the row itself, so a snapshot a few milliseconds
    old never lets two processes make the same transition.
    """

    def __init__(self, db: Database, name: str) -> None:
        super().__init__(name)
        self._db = db
        self._where = breakers_table.c.name == name
        self._snapshot: Any = None
        self.claimed_trial = False
        """Whether this storage's caller made the OPEN -> HALF_OPEN transition (owns the trial)."""

    def _read(self, column: str) -> Any:
        if self._snapshot is None:
            with self._db.engine.connect() as conn:
                self._snapshot = conn.execute(select(breakers_table).where(self._where)).one()
        return getattr(self._snapshot, column)

    def _update(self, condition: Any = None, **values: Any) -> bool:
        statement = update(breakers_table).where(self._where).values(**values)
        if condition is not None:
            statement = statement.where(condition)
        self._snapshot = None
        with self._db.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    @property
    def state(self) -> str:
        return str(self._read("state"))

    @state.setter
    def state(self, state: str) -> None:
        now = datetime.now(UTC)
        c = breakers_table.c
        if state == pybreaker.STATE_HALF_OPEN:
            # Only the caller that moves the row out of OPEN owns the single trial call.
            changed = self._update(
                c.state == pybreaker.STATE_OPEN, state=state, last_transition_at=now, trial_started_at=now
            )
            self.claimed_trial = changed
        else:
            trips = c.trips + 1 if state == pybreaker.STATE_OPEN else c.trips
            changed = self._update(c.state != state, state=state, last_transition_at=now, trips=trips)
        if changed:
            log.warning("circuit breaker %s -> %s", self.name, state, extra={"breaker": self.name, "state": state})
            if activity.in_activity():
                _transitions_counter().add(1, {"breaker": self.name, "state": state})

    def reclaim_stale_trial(self, older_than: timedelta) -> bool:
        """Take over a half-open trial whose caller never reported back (it died)."""
        now = datetime.now(UTC)
        c = breakers_table.c
        self.claimed_trial = self._update(
            (c.state == pybreaker.STATE_HALF_OPEN) & (c.trial_started_at < now - older_than), trial_started_at=now
        )
        return self.claimed_trial

    def increment_counter(self) -> None:
        self._update(failures=breakers_table.c.failures + 1)

    def reset_counter(self) -> None:
        # Every success resets: read first, so the common case takes no write lock.
        if self.counter:
            self._update(breakers_table.c.failures != 0, failures=0)

    def increment_success_counter(self) -> None:
        self._update(successes=breakers_table.c.successes + 1)

    def reset_success_counter(self) -> None:
        if self.success_counter:
            self._update(breakers_table.c.successes != 0, successes=0)

    @property
    def counter(self) -> int:
        return int(self._read("failures"))

    @property
    def success_counter(self) -> int:
        return int(self._read("successes"))

    @property
    def opened_at(self) -> datetime | None:
        return _aware(self._read("opened_at"))

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._update(opened_at=now)


class _TrialState(pybreaker.CircuitHalfOpenState):
    """HALF_OPEN across processes: only the owner of the trial calls through."""

    def before_call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        breaker = self._breaker
        assert isinstance(breaker, _SharedBreaker)
        storage = breaker.storage
        if not storage.claimed_trial and not storage.reclaim_stale_trial(timedelta(seconds=breaker.reset_timeout)):
            raise pybreaker.CircuitBreakerError("a trial call is in progress, circuit breaker still open")


class _SharedBreaker(pybreaker.CircuitBreaker):
    def __init__(self, storage: DatabaseStorage, config: BreakerConfig, exclude: list[Any]) -> None:
        self.storage = storage
        super().__init__(
            fail_max=config.fail_max,
            reset_timeout=config.reset_timeout,
            exclude=exclude,
            state_storage=storage,
            name=storage.name,
            # The call that trips the breaker reports its own error, not a generic one.
            throw_new_error_on_trip=False,
        )

    def _create_new_state(
        self, new_state: str, prev_state: pybreaker.CircuitBreakerState | None = None, notify: bool = False
    ) -> Any:
        if new_state == pybreaker.STATE_HALF_OPEN:
            return _TrialState(self, prev_state, notify)
        return super()._create_new_state(new_state, prev_state, notify)


def _ensure_row(db: Database, name: str, config: BreakerConfig) -> None:
    """Create breaker ``name``'s row, or apply this process's thresholds to it."""
    with db.engine.begin() as conn:
        # Thresholds follow the configuration of the latest process to start.
        changed = conn.execute(
            update(breakers_table)
            .where(breakers_table.c.name == name)
            .values(fail_max=config.fail_max, reset_timeout=config.reset_timeout)
        ).rowcount
    if changed:
        return
    try:
        with db.engine.begin() as conn:
            conn.execute(
                insert(breakers_table).values(
                    name=name,
                    state=pybreaker.STATE_CLOSED,
                    failures=0,
                    successes=0,
                    trips=0,
                    fail_max=config.fail_max,
                    reset_timeout=config.reset_timeout,
                )
            )
    except IntegrityError:
        pass  # another process created the row first


def _is_business_error(err: BaseException) -> bool:
    """Errors that say nothing about the dependency's health (bad input, refused SQL)."""
    return isinstance(err, ApplicationError) and err.non_retryable


class Breakers:
    """Every breaker, over one application database."""

    def __init__(self, db: Database, configs: Mapping[str, BreakerConfig] | None = None) -> None:
        """Serve breakers from ``db``; ``configs`` gives thresholds by name (default: the
        built-in names'), each overridden by its environment variable. Any other name is
        configured on its first call."""
        self._db = db
        # Every breaker variable is checked now, at the worker's start, not at a first call.
        for key, raw in os.environ.items():
            if key.startswith(ENV_PREFIX) and raw:
                _parsed(key, raw)
        self.configs = {
            name: breaker_config(name, configs) for name in (configs if configs is not None else DEFAULT_BREAKERS)
        }
        _metadata.create_all(db.engine)
        for name, config in self.configs.items():
            _ensure_row(db, name, config)

    def config(self, name: str) -> BreakerConfig:
        """Breaker ``name``'s thresholds; a name first seen here gets its row now."""
        config = self.configs.get(name)
        if config is None:
            config = self.configs[name] = breaker_config(name)
            _ensure_row(self._db, name, config)
        return config

    def call(self, name: str, func: Callable[..., T], *args: Any, fallback: bool = True) -> T:
        """``func(*args)`` through breaker ``name`` (any name: see :func:`breaker_config`).

        An open breaker raises a :data:`~sagaworks.CIRCUIT_OPEN` error without calling
        ``func``, its details the breaker's status: non-retryable when the caller has a
        fallback (``fallback=True``; ``sagaworks.guarded`` takes it), else retryable with
        ``next_retry_delay`` set to the breaker's trial time, so the next attempt is the
        trial instead of another fast failure.
        """
        config = self.config(name)
        # A breaker object per call: pybreaker holds its lock for the whole call, which
        # would serialise every call of a process. The state is in the database anyway.
        breaker = _SharedBreaker(DatabaseStorage(self._db, name), config, [_is_business_error])
        try:
            return breaker.call(func, *args)
        except pybreaker.CircuitBreakerError as err:
            status = self.status(name)
            wait = None
            if status.next_trial_at is not None:
                wait = max(status.next_trial_at - datetime.now(UTC), timedelta(seconds=1))
            elif status.state == pybreaker.STATE_HALF_OPEN:
                wait = timedelta(seconds=max(1.0, config.reset_timeout / 10))
            raise ApplicationError(
                f"circuit breaker {name} is {status.state}: {err}",
                status.model_dump(mode="json"),
                type=CIRCUIT_OPEN,
                non_retryable=fallback,
                next_retry_delay=None if fallback else wait,
            ) from None

    def status(self, name: str) -> BreakerStatus:
        [status] = [s for s in _read_statuses(self._db) if s.name == name] or [self._unused(name)]
        return status

    def _unused(self, name: str) -> BreakerStatus:
        # Reading a breaker never called yet creates no row for it.
        config = self.configs.get(name) or breaker_config(name)
        return BreakerStatus(
            name=name,
            state="closed",
            failures=0,
            trips=0,
            fail_max=config.fail_max,
            reset_timeout_seconds=config.reset_timeout,
            last_transition_at=None,
            opened_at=None,
            next_trial_at=None,
        )

    def statuses(self) -> list[BreakerStatus]:
        """Every configured breaker, those never called yet as closed."""
        stored = {s.name: s for s in _read_statuses(self._db)}
        return [stored.get(name) or self._unused(name) for name in self.configs]


def breaker_statuses(db: Database | None = None) -> list[BreakerStatus]:
    """Every breaker recorded in the application database (``DATABASE_URL``), by name.

    What ``saga breakers`` lists. Creates the table when missing; a reader that must not
    touch the schema (the HTTP API) uses :func:`read_breaker_statuses`.
    """
    database = db or Database()
    try:
        _metadata.create_all(database.engine)
        return read_breaker_statuses(database.engine)
    finally:
        if db is None:
            database.dispose()


def read_breaker_statuses(engine: Engine) -> list[BreakerStatus]:
    """The breakers recorded in the database behind ``engine``, read only: an empty list
    when no worker has created the table yet (``GET /api/circuit-breakers/status``)."""
    if not inspect(engine).has_table(breakers_table.name):
        return []
    return _select_statuses(engine)


def _read_statuses(db: Database) -> list[BreakerStatus]:
    return _select_statuses(db.engine)


def _select_statuses(engine: Engine) -> list[BreakerStatus]:
    with engine.connect() as conn:
        rows = conn.execute(select(breakers_table).order_by(breakers_table.c.name)).all()
    statuses = []
    for row in rows:
        opened_at = _aware(row.opened_at)
        is_open = row.state == pybreaker.STATE_OPEN
        statuses.append(
            BreakerStatus(
                name=row.name,
                state=row.state,
                failures=row.failures,
                trips=row.trips,
                fail_max=row.fail_max,
                reset_timeout_seconds=row.reset_timeout,
                last_transition_at=_aware(row.last_transition_at),
                opened_at=opened_at,
                next_trial_at=opened_at + timedelta(seconds=row.reset_timeout) if is_open and opened_at else None,
            )
        )
    return statuses
