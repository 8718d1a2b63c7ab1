"""The viz agent: rows + plan -> a chart that fits, or a table when none does.

Bar for categories, line for time, scatter for two measures, table otherwise. The chart
is an ``altair`` Vega-Lite spec, rendered to SVG on the worker by ``vl-convert-python``
(no browser, nothing fetched).
"""

from __future__ import annotations

import textwrap
from typing import Any

from sagaworks.contracts.query import Chart, ChartKind, QueryPlan

MAX_POINTS = 5000


def chart_kind(plan: QueryPlan, row_count: int) -> ChartKind:
    """Which chart fits the plan's shape."""
    if row_count < 2:
        return "table"
    measures, dimensions = plan.measures, plan.dimensions
    aggregated = any(m.aggregation for m in measures)
    timelike = [d for d in dimensions if d.date_part is not None or d.column == "date"]
    if aggregated:
        if len(dimensions) == 1 and len(measures) == 1:
            return "line" if timelike else "bar"
        if len(dimensions) == 2 and len(timelike) == 1 and len(measures) == 1:
            return "line"  # one line per category
        return "table"
    if len(measures) == 2 and len(dimensions) <= 1:
        return "scatter"
    if len(measures) == 1 and len(dimensions) == 1:
        return "line" if timelike else "bar"
    return "table"


TITLE_CHARACTERS = 60
"""A title line's length: a longer one would run past the 480-pixel chart and be cut."""
TITLE_LINES = 3


def title_lines(title: str) -> list[str]:
    """The chart's title in lines that fit its width (an ellipsis after the last)."""
    return textwrap.wrap(title, TITLE_CHARACTERS, max_lines=TITLE_LINES, placeholder=" ...")


def make_chart(plan: QueryPlan, columns: list[str], rows: list[list[Any]], title: str = "") -> Chart:
    """The chart of ``rows`` (Vega-Lite spec and SVG), or a table."""
    import altair as alt
    import vl_convert

    kind = chart_kind(plan, len(rows))
    if kind == "table" or len(rows) > MAX_POINTS:
        return Chart(kind="table")
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    heading = alt.TitleParams(text=title_lines(title), anchor="start") if title else alt.Undefined
    base = alt.Chart(alt.Data(values=records), title=heading).properties(width=480, height=300)
    measure = plan.measures[0].alias
    dims = plan.dimensions
    # Vega-Lite needs each field's type: measures are quantities, date parts ordered,
    # dates temporal, anything else a category.
    types = {m.alias: "Q" for m in plan.measures}
    types.update({d.alias: "O" if d.date_part else ("T" if d.column == "date" else "N") for d in dims})

    def typed(name: str) -> str:
        return f"{name}:{types.get(name, 'N')}"

    timelike = [d for d in dims if d.date_part is not None or d.column == "date"]
    if kind == "scatter":
        x, y = plan.measures[0].alias, plan.measures[1].alias
        tooltip = [typed(d.alias) for d in dims] + [typed(x), typed(y)]
        chart = base.mark_point().encode(x=alt.X(f"{x}:Q"), y=alt.Y(f"{y}:Q"), tooltip=tooltip)
    elif kind == "line":
        time = timelike[0]
        chart = base.mark_line(point=True).encode(
            x=alt.X(typed(time.alias)), y=alt.Y(typed(measure)), tooltip=[typed(time.alias), typed(measure)]
        )
        others = [d for d in dims if d is not time]
        if others:
            chart = chart.encode(color=alt.Color(f"{others[0].alias}:N"))
    else:
        category = dims[0].alias
        chart = base.mark_bar().encode(
            x=alt.X(typed(category), sort=None), y=alt.Y(typed(measure)), tooltip=[typed(category), typed(measure)]
        )
    spec = chart.to_dict()
    return Chart(kind=kind, vega_lite=spec, svg=vl_convert.vegalite_to_svg(spec))
