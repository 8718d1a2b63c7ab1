"""The semantic stage's LLM pass: the model confirms, completes and adds to the offline rules.

With a model configured on the worker for the family (the LLM gateway, :class:`sagaworks.LLM`,
family ``plan-analysis``: ``SAGAWORKS_LLM_PLAN_ANALYSIS_*`` or the general ``SAGAWORKS_LLM_*``),
the workflow runs the semantic stage a second time on the LLM task queue with
``options.llm`` naming the model. That execution extracts offline as always, then asks the
model for the plan's goals and programmes (answer validated as :class:`SemanticLabels`) and
merges them. The offline extraction is the pass's declared fallback: when the gateway's
``llm`` breaker is open, its budget would be waited out past the step's deadline, the
provider refuses the call or the answer is unusable, the pass ends at once with the offline
extraction (:class:`FellBack`: never stored as the model's output), its outcome saying why
(``StageOutcome.fallback``), and the workflow raises a WARNING alert giving the reason. The
merge:

- a programme the model names is matched to an offline one by its code, else by its name;
  a match is ``confirmed_by`` the model, and DNP fields the rules missed are filled from it;
- a goal or programme only the model found is added (``source`` the model, confidence
  :data:`LLM`);
- nothing the model says is taken unless it is in the plan: a name or a field value that
  does not occur in the plan's text is dropped and counted (``rejected``), so a model that
  invents an indicator cannot make a plan pass the DNP checks.

Offline elements the model did not mention stay: the rules found them in the text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import BaseModel, Field

from sagaworks import LLM as Gateway
from sagaworks import ErrorClass, error

FAMILY = "plan-analysis"
"""The family's name to the LLM gateway."""
ANSWER_TOKENS = 4096
"""The longest answer the model may give (its completion tokens)."""
LLM = 0.7
"""Confidence of an element only the model found (between prose and labelled ones)."""
MAX_TEXT = 12_000
"""Characters of the plan sent to the model (its start: diagnosis, axes, programmes)."""
DNP_FIELDS = ("indicator", "baseline", "target", "responsible")


class LlmGoal(BaseModel):
    text: str = Field(min_length=3, max_length=500)


class LlmProgramme(BaseModel):
    code: str | None = Field(default=None, max_length=20)
    name: str = Field(min_length=3, max_length=200)
    goal: str | None = Field(default=None, max_length=500)
    """The text of the goal it serves, as in ``goals``."""
    indicator: str | None = Field(default=None, max_length=300)
    baseline: str | None = Field(default=None, max_length=300)
    target: str | None = Field(default=None, max_length=300)
    responsible: str | None = Field(default=None, max_length=300)


class SemanticLabels(BaseModel):
    """The structured answer the model must give."""

    goals: list[LlmGoal] = Field(default_factory=list, max_length=50)
    programmes: list[LlmProgramme] = Field(default_factory=list, max_length=100)


_PROMPT = """Below is (the start of) a municipal development plan, in Spanish. List its goals
("objetivos") and its programmes ("programas"), each programme with its code if it has one,
the goal it serves, and its indicator, baseline ("línea base"), target ("meta") and
responsible office as written in the plan (null when the plan does not say). Copy names and
values verbatim from the text. Answer with one JSON object only:
{"goals": [{"text": str}], "programmes": [{"code": str|null, "name": str, "goal": str|null,
"indicator": str|null, "baseline": str|null, "target": str|null, "responsible": str|null}]}

Plan:
"""


class FellBack(Exception):  # noqa: N818 - names what happened, as the gateway's LLMAnswer.fallback does
    """The gateway fell back: the pass's outcome is the offline extraction, for this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def model_of(llm: Gateway | None) -> str | None:
    """The model the pass asks through ``llm`` (``<provider>:<model>``), or None offline."""
    return llm.settings(FAMILY).name if llm is not None and llm.configured(FAMILY) else None


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return " ".join(re.findall(r"\w+", folded))


def _same_words(a: str, b: str) -> bool:
    """Whether two names are the same words (accents, case, punctuation and spacing aside)."""
    return _plain(a) == _plain(b)


def _sentence_with(text: str, phrase: str) -> str | None:
    """The sentence of ``text`` that contains ``phrase`` (spacing and case aside), if any."""
    words = re.findall(r"\w+", phrase)
    if not words:
        return None
    match = re.search(r"\W+".join(map(re.escape, words)), text, re.I)
    if match is None:
        return None
    start = max(text.rfind(".", 0, match.start()), text.rfind("\n", 0, match.start())) + 1
    end = text.find(".", match.end())
    return " ".join(text[start : end + 1 if end >= 0 else None].split())


def merge(
    llm: Gateway | None,
    model: str,
    text: str,
    goals: list[dict[str, Any]],
    programmes: list[dict[str, Any]],
) -> dict[str, int]:
    """Ask ``llm``'s model (which must be ``model``) and merge its answer into ``goals`` and
    ``programmes`` in place; returns what it changed (confirmed, added, filled, rejected).
    Raises :class:`FellBack` when the gateway falls back (the offline extraction is the
    fallback), a final ``ModelError`` when this worker runs another model."""
    runs = model_of(llm)
    if llm is None or runs != model:
        raise error(
            ErrorClass.MODEL,
            f"the LLM pass asks for {model}; this worker runs {runs or 'no model'}",
            non_retryable=True,
        )
    answer = llm.ask(
        FAMILY,
        _PROMPT + text[:MAX_TEXT],
        parse=SemanticLabels.model_validate_json,
        fallback=lambda: None,
        max_tokens=ANSWER_TOKENS,
        json_mode=True,
    )
    if answer.value is None:
        raise FellBack(answer.fallback or f"{model} did not answer")
    labels = answer.value
    plain_text = _plain(text)
    counts = {"confirmed": 0, "added": 0, "filled": 0, "rejected": 0}

    def in_text(value: str | None) -> bool:
        return bool(value) and _plain(value or "") in plain_text

    goal_ids: dict[str, str] = {}
    for goal in labels.goals:
        if not in_text(goal.text):
            counts["rejected"] += 1
            continue
        known = next((g for g in goals if _same_words(g["text"], goal.text)), None)
        if known is None:
            known = {
                "id": f"G{len(goals) + 1}",
                "text": " ".join(goal.text.split()),
                "confidence": LLM,
                "source": model,
            }
            goals.append(known)
            counts["added"] += 1
        else:
            known["confirmed_by"] = model
            counts["confirmed"] += 1
        goal_ids[_plain(goal.text)] = known["id"]
    for proposed in labels.programmes:
        known = next((p for p in programmes if proposed.code and p.get("code") == proposed.code), None) or next(
            (p for p in programmes if _same_words(p["name"], proposed.name)), None
        )
        if known is None:
            sentence = _sentence_with(text, proposed.name)
            if sentence is None:
                counts["rejected"] += 1
                continue
            known = {
                "id": f"P-llm-{len(programmes) + 1}",
                "code": proposed.code,
                "name": " ".join(proposed.name.split()),
                "goal_id": goal_ids.get(_plain(proposed.goal or "")),
                "text": sentence,
                "confidence": LLM,
                "source": model,
                **dict.fromkeys(DNP_FIELDS),
            }
            programmes.append(known)
            counts["added"] += 1
        else:
            known["confirmed_by"] = model
            counts["confirmed"] += 1
        for name in DNP_FIELDS:
            value = getattr(proposed, name)
            if known.get(name) or not value:
                continue
            if in_text(value):
                known[name] = " ".join(value.split())
                known.setdefault("filled_by", []).append(name)
                counts["filled"] += 1
            else:
                counts["rejected"] += 1
    return counts
