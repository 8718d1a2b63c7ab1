"""Risk view, post-mortem and restart, all derived from Temporal's history.

:func:`postmortem` aggregates one run or every run a visibility query finds, of any family:
failed steps, compensations, fallbacks taken, breakers opened, and retries and failed
attempts by error class. For plan-analysis runs it adds
their risk sections: :func:`risk_view` reads such a run's trace (``client.trace``): each
stage step's decoded result carries the stage's assessment, mitigation and breaker state,
each alert step's result the alert, and a step's summary names the stage (and, in runs
started before the stages were steps, the mitigation it was). :func:`restart_run` starts a
new run from a step (the step runner's restart) or a LangGraph node. Nothing here reads
files we wrote on the side.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle

from sagaworks import Family, registry
from sagaworks.client.restart import RestartRefused, restart_from_step
from sagaworks.client.runs import list_runs, visibility_query
from sagaworks.client.trace import RunTrace, TraceStep, trace_markdown, trace_run
from sagaworks.contracts.plans import parse_stage_summary


class StageRow(BaseModel):
    """One execution of a stage (first choice or mitigation) as the history recorded it."""

    stage: str
    attempts: int | None
    duration_ms: float | None
    outcome: str
    reused: bool | None = None
    summary: str | None = None
    detected: list[str] = []
    """Risks the pre-stage assessment found present."""
    applicable: list[str] = []
    """Risks the assessment looked for at this stage."""
    reasons: list[str] = []
    """Why the assessment found each detected risk."""
    mitigation: dict[str, Any] | None = None
    breaker: str | None = None
    error_type: str | None = None
    error: str | None = None


class MitigationRow(BaseModel):
    stage: str
    risk_id: str
    severity: str
    category: str
    strategy: str
    succeeded: bool


class AlertRow(BaseModel):
    level: str
    stage: str
    risk_id: str | None
    message: str
    at: datetime


class RiskView(BaseModel):
    """A run's stages, assessments, alerts, mitigations and breaker states."""

    workflow_id: str
    run_id: str
    status: str
    error_type: str | None
    error: str | None
    stages: list[StageRow]
    alerts: list[AlertRow]
    mitigations: list[MitigationRow]
    breakers: dict[str, str]
    """The last state each stage's breaker reported (``open`` when it failed the stage fast)."""


def risk_view(trace: RunTrace) -> RiskView:
    """The risk view of a run traced with ``payloads=True``."""
    view = RiskView(
        workflow_id=trace.workflow_id,
        run_id=trace.run_id,
        status=trace.status,
        error_type=trace.error_type,
        error=trace.error,
        stages=[],
        alerts=[],
        mitigations=[],
        breakers={},
    )
    risks: dict[str, dict[str, Any]] = {}
    """The run's risk registry, by id (the prepare step's result)."""
    last_failed: dict[str, bool] = {}
    """Whether the last execution of each stage so far failed."""
    for step in trace.steps:
        result = step.result if isinstance(step.result, dict) else {}
        if step.kind == "activity" and step.name == "plan_alert" and step.outcome == "completed":
            view.alerts.append(AlertRow(at=step.closed or step.started, **result))
            continue
        if step.kind == "activity" and step.name == "prepare_plan" and step.outcome == "completed":
            risks = {r["id"]: r for r in (result.get("registry") or {}).get("risks", [])}
            continue
        if step.kind != "activity" or step.name != "run_plan_stage":
            continue
        stage, mitigation = parse_stage_summary(step.summary or "")
        if mitigation is None and last_failed.get(stage):
            # A stage's execution after its failed one is its mitigation: the step runner
            # summarises both by the stage's name, the mitigation is in the step's result,
            # or (a mitigation that failed) it is the risk the stage's last alert named.
            mitigation = _mitigation(result.get("mitigation")) or _alerted_mitigation(view.alerts, stage, risks)
        last_failed[stage] = step.outcome != "completed"
        assessment = result.get("assessment", {})
        row = StageRow(
            stage=stage,
            attempts=step.attempts,
            duration_ms=step.duration_ms,
            outcome=step.outcome,
            reused=result.get("reused"),
            summary=result.get("summary"),
            detected=list(assessment.get("detected", [])),
            applicable=list(assessment.get("applicable", [])),
            reasons=list(assessment.get("reasons", [])),
            mitigation=mitigation,
            breaker=result.get("breaker"),
            error_type=step.error_type,
            error=step.error,
        )
        view.stages.append(row)
        if row.breaker:
            view.breakers[stage] = row.breaker
        elif step.error_type == "CircuitOpen":
            view.breakers[stage] = "open"
        if mitigation is not None:
            view.mitigations.append(MitigationRow(stage=stage, succeeded=step.outcome == "completed", **mitigation))
    return view


MITIGATION_FIELDS = ("risk_id", "severity", "category", "strategy")


def _mitigation(data: Any) -> dict[str, str] | None:
    """The mitigation fields of a stage outcome's ``mitigation``, if it has one."""
    return {name: str(data[name]) for name in MITIGATION_FIELDS} if isinstance(data, dict) else None


def _alerted_mitigation(alerts: list[AlertRow], stage: str, risks: dict[str, dict[str, Any]]) -> dict[str, str] | None:
    """The mitigation of the risk the last alert of ``stage`` named (the failure it explains)."""
    alert = next((a for a in reversed(alerts) if a.stage == stage and a.risk_id in risks), None)
    if alert is None or alert.risk_id is None:
        return None
    risk = risks[alert.risk_id]
    return {
        "risk_id": risk["id"],
        "severity": risk["severity"],
        "category": risk["category"],
        "strategy": risk["mitigation"],
    }


def risk_markdown(view: RiskView) -> str:
    """The risk view as Markdown: stages, alerts, mitigations, breakers."""
    lines = [
        "### Stages",
        "",
        "| stage | attempts | ms | outcome | reused | risks detected before | mitigation | breaker | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in view.stages:
        mitigation = f"{row.mitigation['risk_id']} -> {row.mitigation['strategy']}" if row.mitigation else ""
        note = (
            (f"{row.error_type}: {row.error}" if row.error else row.summary or "")
            .replace("|", "\\|")
            .replace("\n", " ")
        )
        ms = f"{row.duration_ms:.0f}" if row.duration_ms is not None else ""
        reused = "" if row.reused is None else ("yes" if row.reused else "no")
        lines.append(
            f"| {row.stage} | {row.attempts or ''} | {ms} | {row.outcome} | {reused} | "
            f"{', '.join(row.detected)} | {mitigation} | {row.breaker or ''} | {note} |"
        )
    lines += ["", "### Alerts", ""] + (
        [f"- **{a.level}** {a.stage} ({a.risk_id or '-'}): {a.message}" for a in view.alerts] or ["- none"]
    )
    lines += ["", "### Mitigations", ""] + (
        [
            f"- {m.stage}: {m.risk_id} ({m.severity}, {m.category}) by "
            f"{m.strategy}: {'succeeded' if m.succeeded else 'FAILED'}"
            for m in view.mitigations
        ]
        or ["- none"]
    )
    lines += ["", "### Breakers", ""] + (
        [f"- {stage}: {state}" for stage, state in view.breakers.items()] or ["- none"]
    )
    if view.error:
        lines += ["", f"**{view.status}**: {view.error_type}: {view.error}"]
    return "\n".join(lines)


class RunReport(BaseModel):
    """What ``saga trace`` and ``GET /api/workflows/{id}/trace`` return."""

    trace: RunTrace
    risks: RiskView | None
    """Present for runs whose steps carry stage risk records (plan-analysis)."""


async def run_report(client: Client, workflow_id: str, *, run_id: str | None = None, depth: int = 2) -> RunReport:
    """The trace of a run with its decoded results, and its risk view when it has one."""
    trace = await trace_run(client, workflow_id, run_id=run_id, payloads=True, depth=depth)
    view = risk_view(trace)
    return RunReport(trace=trace, risks=view if view.stages else None)


def run_report_markdown(report: RunReport) -> str:
    text = trace_markdown(report.trace)
    return text + ("\n\n" + risk_markdown(report.risks) if report.risks else "")


class Rate(BaseModel):
    total: int
    succeeded: int
    rate: float


GRAPH_WORKFLOW_PREFIX = "langgraph-"
"""The workflow type of a graph run starts so (``sagaworks.langgraph``, an extra this module
does not import unless such a run restarts)."""

COMPENSATION_SUMMARY = "compensate "
"""How the saga helper names a compensation step (``compensate charge_payment``)."""


FALLBACK_SUMMARY = re.compile(r"\(fallback: breaker (?P<breaker>\S+) open\)")
"""How ``sagaworks.guarded`` names the fallback it ran (``summarise (fallback: breaker llm open)``)."""
OPEN_BREAKER = re.compile(r"circuit breaker (?P<breaker>\S+) is (?P<state>[\w-]+)")
"""How a ``CircuitOpen`` error names its breaker."""


class PostMortem(BaseModel):
    """Failed steps, compensations, fallbacks, breakers and retries of any run; for
    plan-analysis runs also failed stages, mitigation effectiveness, critical alerts,
    frequent risks."""

    runs: list[str]
    statuses: dict[str, int]
    aborted: list[dict[str, str]]
    """Runs that failed, with the failure's type and message."""
    failed_steps: list[dict[str, Any]]
    """Every activity or child run that failed or timed out (workflow id, step, attempts, error)."""
    compensations: list[dict[str, Any]]
    """Every compensation a saga ran (workflow id, step, outcome, error)."""
    retries_by_error_class: dict[str, int]
    """Attempts Temporal retried, by the error class of the attempt before the last."""
    failed_attempts_by_error_class: dict[str, int] = {}
    """Every failed attempt the history shows, by error class: the retried ones (as above)
    and the last one of each step that failed for good (ActivityTaskFailed, timed out, a
    failed local activity)."""
    fallbacks: list[dict[str, Any]] = []
    """Every fallback a run took (workflow id, step, why): a ``guarded`` call whose breaker
    was open, or a step whose result says a fallback produced it."""
    breakers_opened: list[dict[str, Any]] = []
    """Every breaker a run found open (workflow id, breaker, step, state)."""
    risk_runs: int
    """How many of the runs are plan-analysis runs (carry stage risk records): the
    sections below are theirs, and printed only when there are some."""
    failed_stages: list[dict[str, Any]]
    """Every failed stage execution (workflow id, stage, error)."""
    mitigation_by_severity: dict[str, Rate]
    mitigation_by_category: dict[str, Rate]
    critical_alerts: list[dict[str, Any]]
    frequent_risks: list[tuple[str, int]]
    """Risks by how many alerts named them, most frequent first."""


def _rates(rows: list[MitigationRow], key: str) -> dict[str, Rate]:
    groups: dict[str, list[bool]] = {}
    for row in rows:
        groups.setdefault(getattr(row, key), []).append(row.succeeded)
    return {k: Rate(total=len(v), succeeded=sum(v), rate=round(sum(v) / len(v), 3)) for k, v in sorted(groups.items())}


def _step_name(step: TraceStep) -> str:
    return step.summary or step.name


def _retries(traces: list[RunTrace]) -> dict[str, int]:
    retried: Counter[str] = Counter()
    for trace in traces:
        for step in trace.steps:
            if step.kind in ("activity", "local_activity") and (step.attempts or 1) > 1:
                # A local activity's marker keeps its attempt count but no failure of an attempt.
                retried[step.retried_error_type or "unknown"] += (step.attempts or 1) - 1
    return dict(retried.most_common())


def _failed_attempts(traces: list[RunTrace]) -> dict[str, int]:
    failed: Counter[str] = Counter(_retries(traces))
    for trace in traces:
        for step in trace.steps:
            if step.kind in ("activity", "local_activity") and step.outcome in ("failed", "timed_out"):
                failed[step.error_type or step.outcome] += 1
    return dict(failed.most_common())


def _result_fallbacks(result: Any) -> list[str]:
    """Why a step's result says a fallback produced it (``fallback``: why; ``fallbacks``: a list)."""
    if not isinstance(result, dict):
        return []
    said = [result["fallback"]] if isinstance(result.get("fallback"), str) and result["fallback"] else []
    listed = result.get("fallbacks")
    return said + ([str(f) for f in listed] if isinstance(listed, list) else [])


def _fallbacks(traces: list[RunTrace]) -> list[dict[str, Any]]:
    rows = []
    for trace in traces:
        for step in trace.steps:
            match = FALLBACK_SUMMARY.search(step.summary or "")
            if match is not None:
                rows.append(
                    {
                        "workflow_id": trace.workflow_id,
                        "step": _step_name(step),
                        "activity": step.name,
                        "why": f"breaker {match['breaker']} open",
                        "outcome": step.outcome,
                    }
                )
            for why in _result_fallbacks(step.result) if step.outcome == "completed" else []:
                rows.append(
                    {
                        "workflow_id": trace.workflow_id,
                        "step": _step_name(step),
                        "activity": step.name,
                        "why": why,
                        "outcome": step.outcome,
                    }
                )
    return rows


def _breakers(traces: list[RunTrace], views: list[RiskView]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(workflow_id: str, breaker: str, step: str, state: str) -> None:
        row = {"workflow_id": workflow_id, "breaker": breaker, "step": step, "state": state}
        if row not in rows:
            rows.append(row)

    for trace in traces:
        for step in trace.steps:
            if step.error_type == "CircuitOpen":
                match = OPEN_BREAKER.search(step.error or "")
                add(
                    trace.workflow_id,
                    match["breaker"] if match else "?",
                    _step_name(step),
                    match["state"] if match else "open",
                )
            match = FALLBACK_SUMMARY.search(step.summary or "")
            if match is not None:
                add(trace.workflow_id, match["breaker"], FALLBACK_SUMMARY.sub("", _step_name(step)).strip(), "open")
    for view in views:
        for stage, state in view.breakers.items():
            if state != "closed":
                add(view.workflow_id, stage, stage, state)
    return rows


def postmortem_of(traces: list[RunTrace]) -> PostMortem:
    """The post-mortem of runs traced with ``payloads=True``."""
    views = [risk_view(trace) for trace in traces]
    mitigations = [m for view in views for m in view.mitigations]
    steps = [
        (t.workflow_id, s)
        for t in traces
        for s in t.steps
        if s.kind in ("activity", "local_activity", "child_workflow")
    ]
    return PostMortem(
        runs=[f"{v.workflow_id}/{v.run_id}" for v in views],
        statuses=dict(Counter(v.status for v in views)),
        aborted=[
            {"workflow_id": v.workflow_id, "error_type": v.error_type or "", "error": v.error or ""}
            for v in views
            if v.status == "FAILED"
        ],
        failed_steps=[
            {
                "workflow_id": wid,
                "step": _step_name(s),
                "attempts": s.attempts,
                "error_type": s.error_type,
                "error": s.error,
            }
            for wid, s in steps
            if s.outcome in ("failed", "timed_out")
        ],
        compensations=[
            {
                "workflow_id": wid,
                "step": (s.summary or "").removeprefix(COMPENSATION_SUMMARY),
                "activity": s.name,
                "outcome": s.outcome,
                "error": s.error,
            }
            for wid, s in steps
            if (s.summary or "").startswith(COMPENSATION_SUMMARY)
        ],
        retries_by_error_class=_retries(traces),
        failed_attempts_by_error_class=_failed_attempts(traces),
        fallbacks=_fallbacks(traces),
        breakers_opened=_breakers(traces, views),
        risk_runs=sum(1 for v in views if v.stages),
        failed_stages=[
            {"workflow_id": v.workflow_id, "stage": s.stage, "error_type": s.error_type, "error": s.error}
            for v in views
            for s in v.stages
            if s.outcome in ("failed", "timed_out")
        ],
        mitigation_by_severity=_rates(mitigations, "severity"),
        mitigation_by_category=_rates(mitigations, "category"),
        critical_alerts=[
            {"workflow_id": v.workflow_id, **a.model_dump(mode="json")}
            for v in views
            for a in v.alerts
            if a.level == "CRITICAL"
        ],
        frequent_risks=Counter(a.risk_id for v in views for a in v.alerts if a.risk_id).most_common(),
    )


async def postmortem(
    client: Client,
    *,
    workflow_id: str | None = None,
    family_name: str | None = None,
    since: timedelta | None = None,
    query: str = "",
    limit: int = 200,
) -> PostMortem:
    """The post-mortem of one run, or of the closed runs of a family started within ``since``
    (and matching the visibility ``query``, when given)."""
    if workflow_id is not None:
        return postmortem_of([await trace_run(client, workflow_id, payloads=True, depth=0)])
    fam = registry().family(family_name) if family_name else None
    clauses = ["ExecutionStatus != 'Running'"] + ([f"({query})"] if query else [])
    if since is not None:
        start = (datetime.now(UTC) - since).strftime("%Y-%m-%dT%H:%M:%SZ")
        clauses.append(f"StartTime > '{start}'")
    rows = await list_runs(client, visibility_query(family=fam, query=" AND ".join(clauses)), limit=limit)
    return postmortem_of(
        [await trace_run(client, r["workflow_id"], run_id=r["run_id"], payloads=True, depth=0) for r in rows]
    )


def postmortem_markdown(report: PostMortem) -> str:
    lines = [
        f"## Post-mortem of {len(report.runs)} run(s)",
        "",
        "Statuses: " + ", ".join(f"{k} {v}" for k, v in report.statuses.items()),
        "",
    ]
    lines += ["### Aborted runs", ""] + (
        [f"- {a['workflow_id']}: {a['error_type']}: {a['error']}" for a in report.aborted] or ["- none"]
    )
    lines += ["", "### Failed steps", ""] + (
        [
            f"- {f['workflow_id']} {f['step']} (attempts {f['attempts'] or '-'}): {f['error_type']}: {f['error']}"
            for f in report.failed_steps
        ]
        or ["- none"]
    )
    lines += ["", "### Compensations", ""] + (
        [
            f"- {c['workflow_id']} {c['step']} ({c['activity']}): {c['outcome']}"
            + (f": {c['error']}" if c["error"] else "")
            for c in report.compensations
        ]
        or ["- none"]
    )
    lines += ["", "### Fallbacks taken", ""] + (
        [f"- {f['workflow_id']} {f['step']}: {f['why']}" for f in report.fallbacks] or ["- none"]
    )
    lines += ["", "### Breakers opened", ""] + (
        [f"- {b['workflow_id']} {b['breaker']} ({b['state']}) at {b['step']}" for b in report.breakers_opened]
        or ["- none"]
    )
    lines += ["", "### Retries by error class", ""] + (
        [f"- {kind}: {count}" for kind, count in report.retries_by_error_class.items()] or ["- none"]
    )
    lines += ["", "### Failed attempts by error class", ""] + (
        [f"- {kind}: {count}" for kind, count in report.failed_attempts_by_error_class.items()] or ["- none"]
    )
    if not report.risk_runs:
        return "\n".join(lines)
    lines += ["", "### Failed stages", ""] + (
        [f"- {f['workflow_id']} {f['stage']}: {f['error_type']}: {f['error']}" for f in report.failed_stages]
        or ["- none"]
    )
    for title, rates in (("severity", report.mitigation_by_severity), ("category", report.mitigation_by_category)):
        lines += [
            "",
            f"### Mitigation effectiveness by {title}",
            "",
            "| group | mitigations | succeeded | rate |",
            "|---|---|---|---|",
        ]
        lines += [f"| {k} | {r.total} | {r.succeeded} | {r.rate:.0%} |" for k, r in rates.items()]
    lines += ["", "### Critical alerts", ""] + (
        [f"- {a['workflow_id']} {a['stage']} ({a['risk_id']}): {a['message']}" for a in report.critical_alerts]
        or ["- none"]
    )
    lines += ["", "### Most frequent risks", ""] + (
        [f"- {risk}: {count}" for risk, count in report.frequent_risks] or ["- none"]
    )
    return "\n".join(lines)


def step_families() -> list[str]:
    """The families on the step runner: their runs restart from any step."""
    return [f.name for f in registry().families if on_step_runner(f)]


def on_step_runner(fam: Family[Any] | None) -> bool:
    """Whether ``fam``'s runs restart from any step (its workflow is a ``StepWorkflow``)."""
    from sagaworks import StepWorkflow  # the workflow modules are loaded once a family is

    return fam is not None and issubclass(fam.workflow, StepWorkflow) and fam.workflow.restarts_from_steps


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``["k=v", ...]`` as state edits; a value is JSON if it parses as JSON, else text."""
    edits: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            edits[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            edits[key.strip()] = raw
    return edits


async def restart_run(
    client: Client,
    workflow_id: str,
    step: str,
    *,
    force: bool = False,
    keep_faults: bool = False,
    edits: dict[str, Any] | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start a new run of ``workflow_id`` from ``step`` (``saga restart ID --from STEP``).

    A family on the step runner restarts from any of its steps (:func:`restart_from_step`;
    ``force`` reuses steps its source compensated); a LangGraph graph
    (``sagaworks.langgraph``), from any node it reached, with the state before that node
    changed by ``edits``. A step restart drops a fault the source's input injected unless
    ``keep_faults``. Any other run is refused, naming the families that restart.
    """
    description = await client.get_workflow_handle(workflow_id).describe()
    if description.workflow_type.startswith(GRAPH_WORKFLOW_PREFIX):
        from sagaworks.langgraph import restart_graph

        try:
            return await restart_graph(client, workflow_id, step, edits=edits)
        except ValueError as refused:
            raise RestartRefused(str(refused)) from None
    if edits:
        raise RestartRefused(f"{workflow_id}: --set edits the state of a LangGraph graph run only")
    fam: Family[Any] | None = registry().family_of_type(description.workflow_type)
    if not on_step_runner(fam):
        raise RestartRefused(
            f"{workflow_id}: a {fam.name if fam else description.workflow_type} run cannot restart from a step; "
            f"families whose runs restart from a step: {', '.join(step_families())}"
        )
    return await restart_from_step(client, workflow_id, step, force=force, keep_faults=keep_faults)
