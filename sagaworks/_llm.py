"""The LLM gateway: every model call of every family through one object, :class:`LLM`.

It lives in activities (it reads clocks and the database and calls the provider) and
gives each call, in this order:

- a **shared breaker** (``llm``, a :class:`sagaworks.Breakers` breaker): while it is
  open no call reaches the provider;
- a **budget** of requests and tokens per window across every worker
  (:mod:`sagaworks._llm_budget`): a call that does not fit waits, by failing its attempt
  with ``next_retry_delay`` set to when it will fit;
- the **provider** the configuration names for the family: Groq (ChatGroq) or any
  OpenAI-compatible endpoint (llama.cpp, vLLM, Ollama...); a 429 is waited out the same
  way, after its ``Retry-After``.

The budget is kept by the gateway, not by a task queue, so it holds for every call
whichever queue its activity runs on (Temporal's rate limit of the ``<task_queue>-llm``
queue counts activities per second, not tokens, and only those on that queue); a family
moves an LLM step to that queue only to bound how many of its activities run at once.

Temporal retries; nothing here loops. An activity that makes several calls therefore
keeps what is answered in its heartbeat details and a retry reads them
(``activity.info().heartbeat_details``) to ask only the rest: its attempt fails at the
first call that must wait, and were each retry to ask every call again, a budget with room
for fewer of its calls at once (shared with many runs) would never let an attempt through.
A family author calls :meth:`LLM.ask` with the
prompt, how to read the answer and the step's offline **fallback**: when no model is
configured the fallback is the answer; when the breaker is open, the answer does not
parse, the provider refuses the call for good, or waiting (for the budget, a 429 or a
failing provider) would pass the step's deadline or its last attempt, the fallback runs
and the answer says why (:attr:`LLMAnswer.fallback`). In a family's activity::

    answer = self._llm.ask(
        "news-digest", summary_prompt(article), max_tokens=200,
        parse=summary_of_answer,                      # raises ValueError on a bad answer
        fallback=lambda: extractive_summary(article),  # the offline answer
    )
    answer.value, answer.provider, answer.fallback    # "openai:qwen2.5-7b", None / "offline", why

Configuration (environment; ``<FAMILY>`` is the family's name upper-cased, ``-`` as ``_``,
and overrides the general variable for that family only):

- ``SAGAWORKS_LLM[_<FAMILY>]_PROVIDER``: ``offline``, ``groq`` or ``openai``; default
  ``groq`` when ``GROQ_API_KEY`` is set, else ``openai`` when a base URL is, else offline;
- ``SAGAWORKS_LLM[_<FAMILY>]_MODEL``: the model (Groq: default ``GROQ_MODEL`` or
  ``llama-3.3-70b-versatile``; OpenAI-compatible: required);
- ``SAGAWORKS_LLM[_<FAMILY>]_BASE_URL``: the endpoint (Groq: default ``GROQ_BASE_URL`` or
  Groq's; OpenAI-compatible: required, up to ``/v1``, e.g. ``http://localhost:8080/v1``);
- ``SAGAWORKS_LLM[_<FAMILY>]_API_KEY``: the key (Groq: default ``GROQ_API_KEY``, required;
  OpenAI-compatible: default ``OPENAI_API_KEY``, may be empty for a local server);
- ``SAGAWORKS_LLM_RPM`` / ``SAGAWORKS_LLM_TPM``: requests and tokens per minute of each
  endpoint and model (default 30 and 6000; 0 for no limit);
- ``SAGAWORKS_BREAKER_LLM``: the breaker's ``<failures>/<recovery seconds>``.

The OpenAI-compatible provider is a plain ``httpx`` POST to ``/chat/completions``: that one
request is all the gateway needs, httpx is already a dependency, and its status and
headers (429, Retry-After) map straight onto Temporal's retries, which ``openai``'s and
``langchain-openai``'s own retrying would only hide.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks._breakers import Breakers
from sagaworks._circuit import CIRCUIT_OPEN
from sagaworks._db import Database
from sagaworks._llm_budget import BudgetLedger, BudgetSpent, LLMBudget, OverBudget, estimate_tokens

log = logging.getLogger("sagaworks.llm")

T = TypeVar("T")

BREAKER = "llm"
"""The breaker every provider call goes through."""
MODEL_ERROR = "ModelError"
"""The error type of a failed model call (the taxonomy's model class)."""
Provider = Literal["offline", "groq", "openai"]
PROVIDERS: tuple[Provider, ...] = ("offline", "groq", "openai")
DEFAULT_GROQ_MODEL = "llama-3.3-70b-versatile"


class LLMConfigError(ValueError):
    """A variable of the LLM configuration is unusable; the message names it."""


@dataclass(frozen=True)
class LLMSettings:
    """Which model a family's calls go to."""

    provider: Provider = "offline"
    model: str = ""
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 60.0

    @property
    def name(self) -> str:
        """``offline``, or ``<provider>:<model>``: what an answer reports as its provider."""
        return "offline" if self.provider == "offline" else f"{self.provider}:{self.model}"

    @property
    def budget_name(self) -> str:
        """One budget per endpoint and model: providers limit each model of an account."""
        return f"{self.provider} {self.base_url or 'default'} {self.model}"


def _family_key(family: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", family).upper()


def llm_settings_from_env(family: str | None = None, environ: Mapping[str, str] | None = None) -> LLMSettings:
    """The model the environment configures for ``family`` (see the module notes)."""
    env = os.environ if environ is None else environ
    prefixes = ([f"SAGAWORKS_LLM_{_family_key(family)}_"] if family else []) + ["SAGAWORKS_LLM_"]

    def get(name: str, *fallbacks: str) -> tuple[str | None, str]:
        for key in [p + name for p in prefixes] + list(fallbacks):
            if env.get(key):
                return env[key], key
        return None, prefixes[0] + name

    provider, provider_key = get("PROVIDER")
    base_url, _ = get("BASE_URL")
    if provider is None:
        provider = "groq" if env.get("GROQ_API_KEY") else "openai" if base_url else "offline"
    if provider not in PROVIDERS:
        raise LLMConfigError(f"{provider_key}={provider!r}: expected one of {', '.join(PROVIDERS)}")
    if provider == "offline":
        return LLMSettings()
    if provider == "groq":
        api_key, key_name = get("API_KEY", "GROQ_API_KEY")
        if not api_key:
            raise LLMConfigError(f"the groq provider needs an API key: set {key_name} or GROQ_API_KEY")
        model, _ = get("MODEL", "GROQ_MODEL")
        url, _ = get("BASE_URL", "GROQ_BASE_URL")
        return LLMSettings("groq", model or DEFAULT_GROQ_MODEL, url, api_key)
    model, model_key = get("MODEL")
    url, url_key = get("BASE_URL")
    if not url or not model:
        missing = " and ".join(k for k, v in ((url_key, url), (model_key, model)) if not v)
        raise LLMConfigError(f"the openai provider (any OpenAI-compatible endpoint) needs {missing}")
    api_key, _ = get("API_KEY", "OPENAI_API_KEY")
    return LLMSettings("openai", model, url.rstrip("/"), api_key)


def llm_budget_from_env(environ: Mapping[str, str] | None = None) -> LLMBudget:
    """``SAGAWORKS_LLM_RPM`` and ``SAGAWORKS_LLM_TPM`` as a per-minute :class:`LLMBudget`."""
    env = os.environ if environ is None else environ
    figures = {}
    for key, default in (("SAGAWORKS_LLM_RPM", LLMBudget.requests), ("SAGAWORKS_LLM_TPM", LLMBudget.tokens)):
        raw = env.get(key) or str(default)
        try:
            figures[key] = int(raw)
        except ValueError:
            raise LLMConfigError(f"{key}={raw!r}: expected a whole number (0 for no limit)") from None
        if figures[key] < 0:
            raise LLMConfigError(f"{key}={raw!r}: expected a number >= 0")
    return LLMBudget(requests=figures["SAGAWORKS_LLM_RPM"], tokens=figures["SAGAWORKS_LLM_TPM"], window_seconds=60)


def check_llm_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`LLMConfigError` naming the first unusable LLM variable of the
    environment: the general model, every family's and the budget."""
    env = os.environ if environ is None else environ
    pattern = re.compile(r"^SAGAWORKS_LLM_(.+)_(PROVIDER|MODEL|BASE_URL|API_KEY)$")
    for family in [None, *sorted({m.group(1) for key in env if (m := pattern.match(key))})]:
        llm_settings_from_env(family, env)
    llm_budget_from_env(env)


@dataclass(frozen=True)
class LLMReply:
    """A model's answer to one call."""

    text: str
    provider: str
    """``<provider>:<model>``."""
    tokens: int | None
    """Prompt and completion tokens, as the provider reported them."""


@dataclass(frozen=True)
class LLMAnswer(Generic[T]):
    """What :meth:`LLM.ask` returns: the value, who produced it, and why a fallback did."""

    value: T
    provider: str
    """``<provider>:<model>`` when the model answered; ``offline`` when the fallback did."""
    fallback: str | None = None
    """Why the fallback produced ``value`` although a model is configured; None when the
    model answered or when no model is configured (offline by choice is no fallback)."""


# --- providers --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answered:
    text: str
    tokens: int | None


@dataclass(frozen=True)
class _RateLimited:
    retry_after: float | None
    message: str


class _Unavailable(Exception):
    """The provider failed in a way that says it is unhealthy (5xx, unreachable): the
    breaker counts it."""


class _ChatProvider(Protocol):
    def send(self, prompt: str, max_tokens: int, json_mode: bool) -> _Answered | _RateLimited: ...


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After`` (or ``retry-after-ms``); None for an HTTP date or none."""
    for key, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(key)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                continue
    return None


def _final(settings: LLMSettings, status: int, message: str) -> ApplicationError:
    # A refusal no retry changes (bad key, unknown model, prompt too long); not the
    # provider's health, so the breaker does not count it (it is non-retryable).
    return ApplicationError(f"{settings.name}: HTTP {status}: {message}", type=MODEL_ERROR, non_retryable=True)


def _transient(status: int) -> bool:
    return status >= 500 or status in (408, 409)


class _OpenAICompatible:
    """``POST {base_url}/chat/completions`` with httpx (see the module notes for why)."""

    def __init__(self, settings: LLMSettings) -> None:
        import httpx

        self._settings = settings
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._http = httpx.Client(base_url=settings.base_url or "", headers=headers, timeout=settings.timeout_seconds)

    def send(self, prompt: str, max_tokens: int, json_mode: bool) -> _Answered | _RateLimited:
        import httpx

        body: dict[str, Any] = {
            "model": self._settings.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            response = self._http.post("/chat/completions", json=body)
        except httpx.HTTPError as err:
            raise _Unavailable(f"{self._settings.base_url} unreachable: {type(err).__name__}: {err}") from None
        message = _message(response)
        if response.status_code == 429:
            return _RateLimited(_retry_after(response.headers), message)
        if _transient(response.status_code):
            raise _Unavailable(f"HTTP {response.status_code}: {message}")
        if response.status_code >= 400:
            raise _final(self._settings, response.status_code, message)
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Unavailable(f"not a chat completion: {response.text[:200]!r}") from None
        usage = data.get("usage") or {}
        return _Answered(str(text), usage.get("total_tokens"))


def _message(response: Any) -> str:
    try:
        detail = response.json().get("error", {})
        return str(detail.get("message", detail))[:500]
    except (ValueError, AttributeError):
        return str(response.text)[:500]


class _Groq:
    """Groq through ``langchain-groq``'s ChatGroq (imported here: the extra that needs it)."""

    def __init__(self, settings: LLMSettings) -> None:
        try:
            from langchain_groq import ChatGroq
        except ImportError:
            raise ApplicationError(
                "the groq provider needs langchain-groq: pip install 'sagaworks[llm]'",
                type=MODEL_ERROR,
                non_retryable=True,
            ) from None

        self._settings = settings
        self._chat = ChatGroq(
            model=settings.model,
            api_key=settings.api_key,  # type: ignore[arg-type]  # ChatGroq declares a SecretStr; it takes the plain key too
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            max_retries=0,  # Temporal retries
            temperature=0,
        )

    def send(self, prompt: str, max_tokens: int, json_mode: bool) -> _Answered | _RateLimited:
        import groq

        options: dict[str, Any] = {"max_tokens": max_tokens}
        if json_mode:
            options["response_format"] = {"type": "json_object"}
        try:
            reply = self._chat.invoke(prompt, **options)
        except groq.RateLimitError as err:
            return _RateLimited(_retry_after(err.response.headers), _message(err.response))
        except groq.APIStatusError as err:
            if _transient(err.status_code):
                raise _Unavailable(f"HTTP {err.status_code}: {_message(err.response)}") from None
            raise _final(self._settings, err.status_code, _message(err.response)) from None
        except (groq.APIConnectionError, groq.APITimeoutError) as err:
            raise _Unavailable(f"Groq unreachable: {err}") from None
        usage = getattr(reply, "usage_metadata", None) or {}
        return _Answered(str(reply.content), usage.get("total_tokens"))


# --- the gateway --------------------------------------------------------------------------


def _retryable(message: str, delay: float | None) -> ApplicationError:
    return ApplicationError(
        message, type=MODEL_ERROR, next_retry_delay=timedelta(seconds=math.ceil(delay * 10) / 10) if delay else None
    )


def _why_not_retry(delay: timedelta | None) -> str | None:
    """Why the current activity should not wait ``delay`` for another attempt: its last
    attempt, or the step's deadline (schedule-to-close) would pass; None when it may."""
    if not activity.in_activity():
        return "no activity to retry the call"
    info = activity.info()
    policy = info.retry_policy
    if policy is not None and policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return f"attempt {info.attempt} was the step's last"
    if info.schedule_to_close_timeout:
        wait = delay or (policy.initial_interval if policy else timedelta(seconds=1))
        deadline = info.scheduled_time + info.schedule_to_close_timeout
        if datetime.now(UTC) + wait >= deadline:
            return f"waiting {wait.total_seconds():g} s would pass the step's deadline ({deadline:%H:%M:%S} UTC)"
    return None


class LLM:
    """The gateway (see the module notes): one per worker process, shared by every family.

    ``settings`` is the model of every family (an :class:`LLMSettings`), or a function of
    the family's name giving it; default: the environment's, per family
    (:func:`llm_settings_from_env`). ``budget`` defaults to :func:`llm_budget_from_env`,
    ``breakers`` to the application database's.
    """

    def __init__(
        self,
        db: Database,
        *,
        settings: LLMSettings | Callable[[str], LLMSettings] | None = None,
        budget: LLMBudget | None = None,
        breakers: Breakers | None = None,
    ) -> None:
        if settings is None:
            # Every configured family is checked now: a bad variable stops the worker at
            # start, naming it, instead of failing calls later.
            check_llm_environment()
            self._settings: Callable[[str], LLMSettings] = llm_settings_from_env
        elif isinstance(settings, LLMSettings):
            fixed = settings
            self._settings = lambda _family: fixed
        else:
            self._settings = settings
        self.budget = budget or llm_budget_from_env()
        self._ledger = None if self.budget.unlimited else BudgetLedger(db, self.budget, call_timeout=120)
        self._breakers = breakers or Breakers(db)
        self._providers: dict[LLMSettings, _ChatProvider] = {}
        self._lock = threading.Lock()

    def settings(self, family: str) -> LLMSettings:
        """The model ``family``'s calls go to."""
        return self._settings(family)

    def configured(self, family: str) -> bool:
        """Whether ``family`` has a model (its provider is not offline)."""
        return self.settings(family).provider != "offline"

    def _provider(self, settings: LLMSettings) -> _ChatProvider:
        with self._lock:
            if settings not in self._providers:
                self._providers[settings] = (
                    _Groq(settings) if settings.provider == "groq" else _OpenAICompatible(settings)
                )
            return self._providers[settings]

    def complete(self, family: str, prompt: str, *, max_tokens: int = 512, json_mode: bool = False) -> LLMReply:
        """The model's answer to ``prompt``, for a call site without a fallback.

        Raises ``ApplicationError``s for Temporal: ``ModelError`` retryable after the
        budget's or the provider's wait (``next_retry_delay``) or after a provider failure,
        final for a refusal; ``CircuitOpen`` retryable at the breaker's trial time."""
        return self._call(family, prompt, max_tokens, json_mode, has_fallback=False)

    def ask(
        self,
        family: str,
        prompt: str,
        *,
        parse: Callable[[str], T],
        fallback: Callable[[], T],
        max_tokens: int = 512,
        json_mode: bool = False,
    ) -> LLMAnswer[T]:
        """``parse`` of the model's answer to ``prompt``, else ``fallback()``, saying why.

        ``parse`` raises ``ValueError`` (pydantic's ``ValidationError`` is one) for an
        answer it cannot use. Raises (for Temporal to retry) only while another attempt
        can still start before the step's deadline and within its attempts."""
        settings = self.settings(family)
        if settings.provider == "offline":
            return LLMAnswer(fallback(), provider="offline")
        try:
            reply = self._call(family, prompt, max_tokens, json_mode, has_fallback=True)
        except ApplicationError as err:
            if err.type == CIRCUIT_OPEN:
                reason = f"breaker {BREAKER} open: {err.message}"
            elif err.non_retryable:
                reason = err.message
            else:
                why = _why_not_retry(err.next_retry_delay)
                if why is None:
                    raise
                reason = f"{err.message}; {why}"
            return self._fallback(family, fallback, reason)
        try:
            return LLMAnswer(parse(reply.text), provider=reply.provider)
        except ValueError as bad:
            return self._fallback(family, fallback, f"{reply.provider}'s answer is unusable: {str(bad)[:300]}")

    def _fallback(self, family: str, fallback: Callable[[], T], reason: str) -> LLMAnswer[T]:
        log.warning("LLM call of %s falls back: %s", family, reason, extra={"family": family, "fallback": reason})
        return LLMAnswer(fallback(), provider="offline", fallback=reason)

    def _call(self, family: str, prompt: str, max_tokens: int, json_mode: bool, *, has_fallback: bool) -> LLMReply:
        settings = self.settings(family)
        if settings.provider == "offline":
            raise ApplicationError(
                f"no model is configured for {family} (SAGAWORKS_LLM_PROVIDER)",
                {"field": "provider"},
                type="InvalidInput",
                non_retryable=True,
            )
        provider = self._provider(settings)
        ledger = self._ledger
        estimate = estimate_tokens(prompt, max_tokens)

        def attempt() -> _Answered | _RateLimited | BudgetSpent:
            # Inside the breaker: a spent budget and a 429 are returned, not raised, so
            # they never count as the provider's failures.
            try:
                reservation = ledger.reserve(settings.budget_name, estimate) if ledger else None
            except BudgetSpent as spent:
                return spent
            except OverBudget as big:
                raise ApplicationError(str(big), type=MODEL_ERROR, non_retryable=True) from None
            tokens = None
            try:
                outcome = provider.send(prompt, max_tokens, json_mode)
                tokens = outcome.tokens if isinstance(outcome, _Answered) else None
                return outcome
            finally:
                if ledger and reservation is not None:
                    ledger.settle(reservation, tokens)

        try:
            outcome = self._breakers.call(BREAKER, attempt, fallback=has_fallback)
        except _Unavailable as down:
            raise ApplicationError(f"{settings.name}: {down}", type=MODEL_ERROR) from None
        if isinstance(outcome, BudgetSpent):
            raise _retryable(f"{settings.name}: {outcome}", outcome.wait)
        if isinstance(outcome, _RateLimited):
            raise _retryable(f"{settings.name}: rate limited (429): {outcome.message}", outcome.retry_after)
        if not outcome.text.strip():
            raise ApplicationError(f"{settings.name}: the model gave an empty answer", type=MODEL_ERROR)
        return LLMReply(text=outcome.text, provider=settings.name, tokens=outcome.tokens)
