"""Results and form fields for people: JSON becomes tables, Markdown and images."""

from __future__ import annotations

import base64
import re
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

# Raw HTML in a result is shown as text, never run: results carry model and document output.
# Markdown images are off too (``![x](url)`` stays a link): a result must not make the
# browser fetch from wherever it names.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
# Only images the result carries itself; a URL is shown as text, never fetched.
_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]+$")
_MARKDOWN_HINTS = re.compile(r"(^#{1,6} |\n[-*] |\*\*|\n\|.*\|)", re.MULTILINE)


def render_value(value: Any) -> Markup:
    """HTML for a JSON value: objects as key/value tables, lists of objects as tables,
    Markdown strings rendered, ``data:`` image URIs shown as images."""
    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{render_value(v)}</td></tr>" for k, v in value.items())
        return Markup(f'<table class="kv">{rows}</table>')
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            columns = list(dict.fromkeys(key for item in value for key in item))
            head = "".join(f"<th>{escape(c)}</th>" for c in columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{render_value(item.get(c, ''))}</td>" for c in columns) + "</tr>"
                for item in value
            )
            return Markup(f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
        if not value:
            return Markup('<span class="muted">none</span>')
        return Markup("<ul>" + "".join(f"<li>{render_value(item)}</li>" for item in value) + "</ul>")
    if isinstance(value, str):
        if _IMAGE.match(value):
            return Markup(f'<img class="result-image" src="{escape(value)}" alt="image from the result">')
        if _MARKDOWN_HINTS.search(value):
            return Markup(f'<div class="markdown">{_render_markdown(value)}</div>')
        return escape(value)
    if value is None:
        return Markup('<span class="muted">-</span>')
    if isinstance(value, float):
        # A person reads 9.6, not the binary float's 9.600000000000001.
        return escape(repr(round(value, 4)).removesuffix(".0"))
    return escape(str(value))


def _render_markdown(text: str) -> str:
    """Markdown as HTML, a top-level heading after the first one a section heading (H2): a
    post's own title stays its only H1, above the headings its sections copied from sources."""
    tokens = _markdown.parse(text)
    titled = False
    for token in tokens:
        if token.type in ("heading_open", "heading_close") and token.tag == "h1":
            if titled:
                token.tag = "h2"
            elif token.type == "heading_close":
                titled = True
    return _markdown.renderer.render(tokens, _markdown.options, {})


def svg_data_uri(svg: str) -> str:
    """An SVG as a ``data:`` URI for an ``<img>``: a browser never runs scripts of an SVG
    shown as an image, and loads nothing it links to (inline markup would do both)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


QUERY_ROWS_SHOWN = 100
"""The most rows the run page of a query shows (the result itself holds up to ``max_rows``)."""


def query_view(result: dict[str, Any]) -> dict[str, Any]:
    """What the run page of a completed ``query`` run shows: the chart as an image (or that
    it is a table), the SQL, the plan, the rows (capped) and who produced each part."""
    chart = result.get("chart") or {}
    rows = result.get("rows") or []
    return {
        "question": result.get("question", ""),
        "chart_kind": chart.get("kind", "table"),
        "chart_note": _no_chart_note(result),
        "chart_src": svg_data_uri(chart["svg"]) if chart.get("svg") else None,
        "vega_lite": chart.get("vega_lite"),
        "sql": result.get("sql", ""),
        "plan": result.get("plan") or {},
        "columns": result.get("columns") or [],
        "rows": rows[:QUERY_ROWS_SHOWN],
        "rows_shown": min(len(rows), QUERY_ROWS_SHOWN),
        "row_count": result.get("row_count", len(rows)),
        "truncated": result.get("truncated", False),
        "produced_by": result.get("produced_by") or {},
        "fallbacks": result.get("fallbacks") or [],
    }


def _no_chart_note(result: dict[str, Any]) -> str:
    """Why a query result has no chart: none fits it, or the viz agent gave none (its
    breaker open, or down), as the run's fallbacks say."""
    chart_by = str((result.get("produced_by") or {}).get("chart", ""))
    reasons = [f.removeprefix("viz:").strip() for f in result.get("fallbacks") or [] if f.startswith("viz:")]
    if not reasons and not chart_by.startswith("fallback"):
        return "No chart fits this result: shown as a table."
    reason = reasons[0] if reasons else "no reason recorded"
    if "breaker" in reason.lower() and "open" in reason.lower():
        return f"No chart: the viz agent's circuit breaker is open ({reason}), so the result is shown as a table."
    return f"No chart: the viz agent was unavailable ({reason}), so the result is shown as a table."


def failure_view(failure: list[dict[str, Any]], *, compensations_shown: bool) -> list[dict[str, Any]]:
    """The failure chain as the run page shows it: without the compensations a saga's
    report repeats when the page lists them already."""
    if not compensations_shown:
        return failure
    return [
        {
            **entry,
            "details": [
                {k: v for k, v in detail.items() if k != "compensations"} if isinstance(detail, dict) else detail
                for detail in entry["details"]
            ],
        }
        if isinstance(entry.get("details"), list)
        else entry
        for entry in failure
    ]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root)
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:  # Optional[X]: the form treats an empty field as "not given"
        return {**_resolve(options[0], root), **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def form_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per top-level property: its input kind (text, number, integer, checkbox,
    select, or json for nested objects and lists) and the constraints the browser can check."""
    required = set(schema.get("required", []))
    fields = []
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(raw, schema)
        kind = prop.get("type")
        field: dict[str, Any] = {
            # The property's own title: a referenced model's title names the model, not the field.
            "name": name,
            "label": raw.get("title") or name.replace("_", " ").title(),
            "required": name in required,
            "description": prop.get("description", ""),
            "default": prop.get("default"),
        }
        if "enum" in prop:
            field.update(kind="select", options=prop["enum"])
        elif kind == "boolean" and field["default"] is None:
            # An optional boolean left unset is neither true nor false (the workflow decides,
            # as when the CLI or API leaves it out): a choice of unset, yes or no.
            field["kind"] = "tristate"
        elif kind in ("string", "integer", "number", "boolean"):
            field["kind"] = {"boolean": "checkbox"}.get(kind, kind)
            for key in (
                "pattern",
                "minLength",
                "maxLength",
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
            ):
                if key in prop:
                    field[key] = prop[key]
        else:
            field["kind"] = "json"
        fields.append(field)
    return fields


def interaction_forms(workflow: type, names: list[str]) -> list[dict[str, Any]]:
    """One form per update or signal of ``names`` that takes one pydantic model: its fields
    generated from the model's JSON Schema (as a start form's are), and the handler's first
    line of documentation. Handlers without an argument (pause, resume) have buttons."""
    from pydantic import BaseModel
    from temporalio import workflow as temporal_workflow

    definition = temporal_workflow._Definition.must_from_class(workflow)
    forms = []
    for name in names:
        handler: Any = definition.updates.get(name)
        kind = "update"
        if handler is None:
            handler, kind = definition.signals.get(name), "signal"
        if handler is None:
            continue
        arg_types = getattr(handler, "arg_types", None) or []
        if len(arg_types) != 1 or not (isinstance(arg_types[0], type) and issubclass(arg_types[0], BaseModel)):
            continue
        doc = (handler.fn.__doc__ or "").strip().splitlines()
        forms.append(
            {
                "name": name,
                "kind": kind,
                "doc": doc[0] if doc else "",
                "fields": form_fields(arg_types[0].model_json_schema()),
            }
        )
    return forms


def lookup_text(result: str | None) -> Any:
    """An MCP lookup's result as data to show: JSON, or the rows a tool printed as a Python
    literal (``[{'tier': 'premium'}]``) read without evaluating anything; else the text."""
    import ast
    import json

    if result is None:
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(result)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (list, dict)):
            return value
    return result


def ticket_view(ticket: dict[str, Any]) -> dict[str, Any]:
    """What a support ticket's page shows of it, as text: subject, type, priority, state,
    who has it, each escalation in a sentence, each lookup's result as rows (not the
    Python literal the tool printed), the comments and the resolution."""
    escalations = [
        f"{e.get('at', '')}: {e.get('from_priority')} -> {e.get('to_priority')}, "
        f"{e.get('reason')} ({e.get('notified')})"
        for e in ticket.get("escalations") or []
    ]
    lookups = [
        {
            "what": item.get("what"),
            "via": f"{item.get('server')} {item.get('tool')}",
            "result": lookup_text(item.get("result")) if item.get("error") is None else None,
            "error": item.get("error"),
        }
        for item in ticket.get("lookups") or []
    ]
    return {
        "subject": ticket.get("subject", ""),
        "ticket_id": ticket.get("ticket_id", ""),
        "customer": ticket.get("customer_email", ""),
        "type": ticket.get("ticket_type", ""),
        "priority": ticket.get("priority", ""),
        "state": ticket.get("state", ""),
        "assignee": ticket.get("assignee"),
        "customer_tier": ticket.get("customer_tier"),
        "classified_by": ticket.get("classified_by"),
        "escalations": escalations,
        "lookups": lookups,
        "comments": [f"{c.get('author')}: {c.get('text')}" for c in ticket.get("comments") or []],
        "resolution": ticket.get("resolution"),
        "routing_path": " -> ".join(ticket.get("routing_path") or []),
    }


REPEAT_MIN_LENGTH = 200
"""A text this long that a result holds twice (a report, and the stage that wrote it) is
shown once."""


def without_repeats(result: Any) -> Any:
    """``result`` with each nested copy of one of its top-level long texts replaced by a
    pointer to it: a plan's report is its ``report`` and its report stage's ``document``."""
    if not isinstance(result, dict):
        return result
    top = {value: key for key, value in result.items() if isinstance(value, str) and len(value) >= REPEAT_MIN_LENGTH}
    if not top:
        return result

    def strip(value: Any) -> Any:
        if isinstance(value, str) and value in top:
            return f"(the {top[value]} above)"
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    # The top-level texts themselves stay; copies anywhere below them go.
    return {key: value if isinstance(value, str) else strip(value) for key, value in result.items()}
