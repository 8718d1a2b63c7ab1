"""Stages 6-8: financial audit of the investment table, DNP validation, scoring."""

from __future__ import annotations

import re
from typing import Any

from sagaworks.activities.plan_analysis.analysis import _in_scope, _plain, _text
from sagaworks.activities.plan_analysis.common import PlanError, StageContext, StageResult

_YEAR = re.compile(r"^(20\d\d)$")
_AMOUNT = re.compile(r"\$?\s*(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?")
_TEXT_AMOUNT = re.compile(r"\$\s*(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?\s*millones", re.I)
_PERIOD = re.compile(r"\b(20\d\d)\s*[-–]\s*(20\d\d)\b")
TOLERANCE = 0.01
DNP_FIELDS = ("indicator", "baseline", "target", "responsible")
DNP_MIN_COMPLIANCE = 0.8


def _millions(value: float) -> str:
    """An amount as a Colombian planner writes it (``1.250``)."""
    return f"{value:,.0f}".replace(",", ".")


def _number(cell: str) -> float | None:
    """A Colombian-format amount (``1.250,5``) or None."""
    match = _AMOUNT.fullmatch(cell.replace(" ", "")) if cell else None
    if not match:
        return None
    return float(match.group(1).replace(".", "") + ("." + match.group(2) if match.group(2) else ""))


def _budget_table(tables: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]] | None:
    for table in tables:
        header = table["rows"][0]
        if sum(bool(_YEAR.match(c)) for c in header) >= 2:
            return header, table["rows"][1:]
    return None


def _matches(programme: dict[str, Any], label: str) -> bool:
    label = _plain(label)
    return (
        bool(programme.get("code") and label.startswith(programme["code"])) or _plain(programme["name"])[:20] in label
    )


def financial(ctx: StageContext) -> StageResult:
    """Totals add up, every programme is funded, years are those of the plan's period."""
    tables = ctx.upstream("extract")["tables"]
    programmes = _in_scope(ctx.upstream("semantic")["programmes"], ctx.options.scope)
    text = _text(ctx)
    findings: list[str] = []
    found = _budget_table(tables)
    funded: dict[str, float] = {}
    if found is None:
        if not ctx.options.estimate_budget:
            raise PlanError.missing_financial_data(f"no investment table with year columns among {len(tables)} tables")
        for programme in programmes:
            amounts = [
                _number(m.group(1) + (f",{m.group(2)}" if m.group(2) else ""))
                for m in _TEXT_AMOUNT.finditer(programme["text"])
            ]
            if amounts:
                funded[programme["id"]] = sum(a for a in amounts if a)
        findings.append(
            f"sin plan plurianual de inversiones: {len(funded)} de {len(programmes)} programas estimados "
            "con montos citados en el texto"
        )
        source, years, checks = "text", [], 1
    else:
        header, rows = found
        source, checks = "table", 0
        year_columns = [(i, int(c)) for i, c in enumerate(header) if _YEAR.match(c)]
        total_column = next((i for i, c in enumerate(header) if _plain(c).startswith("total")), None)
        years = [year for _, year in year_columns]
        period = _PERIOD.search(text)
        checks += 1
        if years != list(range(years[0], years[0] + len(years))):
            findings.append(f"los años no son consecutivos: {years}")
        elif period and (years[0] != int(period.group(1)) or years[-1] != int(period.group(2))):
            findings.append(
                f"la tabla cubre {years[0]}-{years[-1]} pero el periodo del plan es {period.group(1)}-{period.group(2)}"
            )
        column_sums = [0.0] * len(year_columns)
        total_row: list[str] | None = None
        for row in rows:
            if _plain(row[0]).startswith("total"):
                total_row = row
                continue
            values = [_number(row[i]) for i, _ in year_columns]
            checks += 1
            if any(v is None for v in values):
                findings.append(f"'{row[0]}': montos ilegibles {[row[i] for i, _ in year_columns]}")
                continue
            for k, value in enumerate(values):
                column_sums[k] += value or 0
            row_sum = sum(v or 0 for v in values)
            stated = _number(row[total_column]) if total_column is not None else None
            if stated is not None and abs(stated - row_sum) > TOLERANCE * max(row_sum, 1):
                findings.append(
                    f"'{row[0]}': el total de la fila ({_millions(stated)}) "
                    f"no es la suma de sus años ({_millions(row_sum)})"
                )
            for programme in programmes:
                if _matches(programme, row[0]):
                    funded[programme["id"]] = row_sum
        if total_row is not None:
            for k, (i, year) in enumerate(year_columns):
                stated = _number(total_row[i])
                checks += 1
                if stated is None or abs(stated - column_sums[k]) > TOLERANCE * max(column_sums[k], 1):
                    findings.append(
                        f"total {year}: dice {total_row[i]} pero los programas suman {_millions(column_sums[k])}"
                    )
    unfunded = [p["id"] for p in programmes if p["id"] not in funded]
    checks += len(programmes)
    for pid in unfunded:
        name = next(p["name"] for p in programmes if p["id"] == pid)
        findings.append(f"el programa {pid} ({name}) no tiene recursos asignados")
    total = sum(funded.values())
    return StageResult(
        output={
            "source": source,
            "years": years,
            "funded": funded,
            "findings": findings,
            "checks": checks,
            "total": total,
        },
        metrics={"budget_total": total, "findings": len(findings), "checks": checks, "funded_programmes": len(funded)},
        summary=f"{total:,.0f} million over {len(funded)} programmes from the {source}; {len(findings)} findings",
    )


def dnp(ctx: StageContext) -> StageResult:
    """Each programme has an indicator, a baseline, a target and a responsible office."""
    programmes = ctx.upstream("semantic")["programmes"]
    gaps = {p["id"]: [f for f in DNP_FIELDS if not p.get(f)] for p in programmes}
    complete = sum(1 for missing in gaps.values() if not missing)
    compliance = complete / len(programmes) if programmes else 0.0
    incomplete = {pid: missing for pid, missing in gaps.items() if missing}
    if compliance < DNP_MIN_COMPLIANCE and not ctx.options.tolerate_findings:
        listed = "; ".join(f"{pid} lacks {', '.join(missing)}" for pid, missing in incomplete.items())
        raise PlanError.dnp_validation_failed(
            f"{compliance:.0%} of programmes complete (needs {DNP_MIN_COMPLIANCE:.0%}): {listed}"
        )
    return StageResult(
        output={"gaps": incomplete, "compliance": compliance, "programmes": len(programmes)},
        metrics={"compliance": round(compliance, 3), "incomplete_programmes": len(incomplete)},
        summary=f"{complete}/{len(programmes)} programmes meet the DNP fields",
    )


GRADES = ((80, "sólido"), (60, "aceptable"), (40, "débil"), (0, "insuficiente"))


def scoring(ctx: StageContext) -> StageResult:
    """0-100: DNP completeness 30, budget consistency 25, causal coverage 25, indicators 20."""
    semantic = ctx.upstream("semantic")
    programmes = max(1, len(semantic["programmes"]))
    finance = ctx.upstream("financial")
    parts = {
        "dnp": 30 * ctx.upstream("dnp")["compliance"],
        "financial": 25 * max(0.0, 1 - len(finance["findings"]) / max(1, finance["checks"])),
        "causal": 25
        * min(
            1.0, len({m["programme"] for m in ctx.upstream("mechanisms")["mechanisms"] if m["complete"]}) / programmes
        ),
        "indicators": 20 * sum(1 for p in semantic["programmes"] if p["indicator"]) / programmes,
    }
    score = round(sum(parts.values()), 1)
    grade = next(name for floor, name in GRADES if score >= floor)
    return StageResult(
        output={"score": score, "grade": grade, "parts": {k: round(v, 1) for k, v in parts.items()}},
        metrics={"score": score},
        summary=f"{score:g}/100 ({grade})",
    )
