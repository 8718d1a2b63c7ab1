"""Stage 9: the report a planner reads, in Markdown, HTML and JSON, from one structure."""

from __future__ import annotations

import html
import json
from typing import Any

from sagaworks.activities.plan_analysis.audit import _millions
from sagaworks.activities.plan_analysis.common import StageContext, StageResult


def _sections(ctx: StageContext) -> list[tuple[str, list[str]]]:
    semantic, finance = ctx.upstream("semantic"), ctx.upstream("financial")
    dnp, score = ctx.upstream("dnp"), ctx.upstream("scoring")
    mechanisms = ctx.upstream("mechanisms")["mechanisms"]
    funded = finance["funded"]
    programmes = [
        f"**{p['id']} {p['name']}**: indicador {p.get('indicator') or '—'}; línea base {p.get('baseline') or '—'}; "
        f"meta {p.get('target') or '—'}; responsable {p.get('responsible') or '—'}; "
        f"inversión {_millions(funded[p['id']])} millones"
        if p["id"] in funded
        else f"**{p['id']} {p['name']}**: indicador {p.get('indicator') or '—'}; sin inversión asignada"
        for p in semantic["programmes"]
    ]
    kinds: dict[str, int] = {}
    for mechanism in mechanisms:
        kinds[mechanism["type"]] = kinds.get(mechanism["type"], 0) + 1
    return [
        (
            "Resultado",
            [
                f"Puntaje {score['score']:g}/100: plan **{score['grade']}**.",
                "Componentes: " + ", ".join(f"{k} {v:g}" for k, v in score["parts"].items()) + ".",
            ],
        ),
        ("Objetivos", [g["text"] for g in semantic["goals"]] or ["No se identificaron objetivos."]),
        ("Programas", programmes or ["No se identificaron programas."]),
        (
            "Cadenas causales y mecanismos",
            [f"{n} mecanismo(s) de {k}" for k, n in sorted(kinds.items())]
            + [f"{sum(1 for m in mechanisms if m['complete'])} de {len(mechanisms)} cadenas llegan a un objetivo."],
        ),
        (
            "Auditoría financiera",
            [f"Inversión identificada: {_millions(finance['total'])} millones (fuente: {finance['source']})."]
            + (finance["findings"] or ["Los totales cuadran y todos los programas tienen inversión."]),
        ),
        (
            "Validación DNP",
            [f"{dnp['compliance']:.0%} de los programas completos."]
            + [f"{pid}: falta {', '.join(missing)}" for pid, missing in dnp["gaps"].items()],
        ),
        (
            "Riesgos mitigados durante el análisis",
            [f"{m.risk_id} ({m.severity}) en {m.cause.split(':')[0]}: {m.strategy}" for m in ctx.mitigations]
            or ["Ninguno."],
        ),
        ("Alertas", [f"[{a.level}] {a.stage}: {a.message}" for a in ctx.alerts] or ["Ninguna."]),
    ]


def report(ctx: StageContext) -> StageResult:
    title = f"Análisis del plan {ctx.plan.plan_id}" + (f" — {ctx.plan.municipality}" if ctx.plan.municipality else "")
    sections = _sections(ctx)
    markdown = "\n".join(
        [f"# {title}", ""]
        + [line for name, items in sections for line in (f"## {name}", "", *(f"- {i}" for i in items), "")]
    )
    body = "".join(
        f"<h2>{html.escape(name)}</h2><ul>"
        + "".join(f"<li>{html.escape(i).replace('**', '')}</li>" for i in items)
        + "</ul>"
        for name, items in sections
    )
    page = (
        '<!DOCTYPE html><html lang="es"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    data: dict[str, Any] = {
        "plan_id": ctx.plan.plan_id,
        "municipality": ctx.plan.municipality,
        **{stage: ctx.upstream(stage) for stage in ("semantic", "financial", "dnp", "scoring")},
        "mechanisms": ctx.upstream("mechanisms")["mechanisms"],
        "mitigations": [m.model_dump() for m in ctx.mitigations],
        "alerts": [a.model_dump() for a in ctx.alerts],
    }
    score = ctx.upstream("scoring")
    return StageResult(
        output={"markdown": markdown, "html": page, "json": json.dumps(data, ensure_ascii=False)},
        metrics={"markdown_chars": len(markdown)},
        summary=f"report: {score['score']:g}/100 ({score['grade']}), {len(markdown)} characters of Markdown",
        document=markdown,
    )
