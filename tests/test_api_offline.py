"""API pieces that need no Temporal: how the console renders results and builds forms, CORS."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sagaworks import registry
from sagaworks.activities.query.viz import title_lines
from sagaworks.client.api import ApiSettings, create_app
from sagaworks.client.api.render import failure_view, form_fields, query_view, render_value
from sagaworks.contracts.orders import OrderInput

# The routes asked here never reach Temporal: a placeholder stands for its client.
OFFLINE: Any = object()


def test_results_become_tables_markdown_and_images_and_never_run_html() -> None:
    html = str(
        render_value(
            {
                "summary": "# Digest\n\n- **one** point\n- two <script>alert(1)</script>",
                "chart": "data:image/png;base64,iVBORw0KGgo=",
                "rows": [{"name": "a", "score": 1}, {"name": "b", "extra": True}],
                "plain": "<b>not bold</b>",
            }
        )
    )
    assert "<h1>Digest</h1>" in html and "<strong>one</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<img class="result-image" src="data:image/png;base64,iVBORw0KGgo="' in html
    assert "<th>name</th><th>score</th><th>extra</th>" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_results_never_make_the_browser_fetch_elsewhere() -> None:
    html = str(
        render_value(
            {
                "photo": "https://tracker.example/pixel.png",
                "post": "# Post\n\n![tracking pixel](https://tracker.example/p.gif) and **text**",
                "chart": "data:image/svg+xml;base64,PHN2Zy8+",
            }
        )
    )
    assert html.count("<img") == 1 and '<img class="result-image" src="data:image/svg+xml;base64,PHN2Zy8+"' in html
    assert "https://tracker.example/pixel.png" in html  # shown as text
    assert '<a href="https://tracker.example/p.gif">tracking pixel</a>' in html  # a link a person may follow
    # And the browser would refuse anything else: the console's policy allows only this
    # server and data: images.
    app = TestClient(base_url="http://127.0.0.1", app=create_app(ApiSettings(token=None), client=OFFLINE))
    policy = app.get("/api/catalog").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy and "frame-ancestors 'none'" in policy


def test_form_fields_follow_the_input_schema() -> None:
    fields = {f["name"]: f for f in form_fields(OrderInput.model_json_schema())}
    assert fields["order_id"]["kind"] == "string" and fields["order_id"]["required"]
    assert fields["order_id"]["pattern"].startswith("^")
    assert fields["items"]["kind"] == "json" and fields["items"]["required"]
    assert fields["inject_failure"]["kind"] == "json" and fields["inject_failure"]["label"] == "Inject Failure"
    assert fields["step_delay_seconds"]["kind"] == "number" and fields["step_delay_seconds"]["default"] == 0
    assert fields["parallel_compensation"]["kind"] == "checkbox" and not fields["parallel_compensation"]["required"]


def test_every_family_gets_a_form_field_per_input_property() -> None:
    for fam in registry().families:
        schema = fam.input_schema()
        assert [f["name"] for f in form_fields(schema)] == list(schema["properties"]), fam.name


def test_cors_is_off_unless_origins_are_configured() -> None:
    preflight = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"}
    # The routes asked here never reach Temporal; a placeholder client keeps the app offline.
    closed = TestClient(
        base_url="http://127.0.0.1", app=create_app(ApiSettings(token=None, cors_origins=()), client=OFFLINE)
    )
    answer = closed.get("/api/catalog", headers={"Origin": "http://elsewhere.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in closed.options("/api/catalog", headers=preflight).headers

    opened = TestClient(
        base_url="http://127.0.0.1",
        app=create_app(ApiSettings(token=None, cors_origins=("http://elsewhere.example",)), client=OFFLINE),
    )
    allowed = opened.options("/api/catalog", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_no_page_loads_scripts_from_elsewhere() -> None:
    app = TestClient(base_url="http://127.0.0.1", app=create_app(ApiSettings(token=None), client=OFFLINE))
    assert app.get("/docs").status_code == 404 and app.get("/redoc").status_code == 404
    for path in ("/", "/families/order"):
        page = app.get(path).text
        assert "http://" not in page and "https://" not in page, path


def _tokenless() -> TestClient:
    return TestClient(base_url="http://127.0.0.1:8000", app=create_app(ApiSettings(token=None), client=OFFLINE))


def test_without_a_token_other_host_names_are_refused() -> None:
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: refused before any handler.
    response = _tokenless().get("/api/catalog", headers={"Host": "rebound.example:8000"})
    assert response.status_code == 421 and response.json()["error"]["type"] == "HostNotAllowed"
    assert _tokenless().get("/api/catalog", headers={"Host": "localhost:8000"}).status_code == 200


def test_without_a_token_a_form_post_cannot_control_runs() -> None:
    # What a cross-site form or a text/plain fetch can send without a CORS preflight.
    for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
        response = _tokenless().post("/api/workflows/order-x/cancel", headers=headers)
        assert response.status_code == 415, headers
        assert response.json()["error"]["field"] == "Content-Type"


def test_an_optional_boolean_left_untouched_stays_unset() -> None:
    """The order's ``local_steps`` (unset: the worker's choice) is a choice of unset, yes or
    no, unset at first: a console order runs as a CLI or API one that leaves it out."""
    fields = {f["name"]: f for f in form_fields(OrderInput.model_json_schema())}
    assert fields["local_steps"]["kind"] == "tristate" and fields["local_steps"]["default"] is None
    assert fields["parallel_compensation"]["kind"] == "checkbox"
    page = TestClient(create_app(ApiSettings(token=None), client=OFFLINE), base_url="http://127.0.0.1").get(
        "/families/order"
    )
    assert '<select name="local_steps" data-kind="tristate"' in page.text
    assert '<option value="" selected>not set (default)</option>' in page.text


def test_numbers_are_rounded_for_people() -> None:
    assert str(render_value(9.600000000000001)) == "9.6"
    assert str(render_value({"mean": 0.1 + 0.2, "count": 3, "total": 12.0})).count("<td>0.3</td>") == 1
    assert "<td>12</td>" in str(render_value({"total": 12.0})) and str(render_value(3.14159265)) == "3.1416"


def test_headings_copied_into_a_post_sit_under_its_title() -> None:
    html = str(render_value("# My post\n\n## Introduction\n\nIntro.\n\n# Copied heading\n\n## Its part\n\ntext"))
    assert html.count("<h1>") == 1 and "<h1>My post</h1>" in html
    assert "<h2>Introduction</h2>" in html and "<h2>Copied heading</h2>" in html and "<h2>Its part</h2>" in html


def test_the_console_has_a_favicon() -> None:
    app = TestClient(create_app(ApiSettings(token=None), client=OFFLINE), base_url="http://127.0.0.1")
    assert '<link rel="icon" href="/static/favicon.svg"' in app.get("/").text
    icon = app.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


def test_a_missing_chart_says_whether_none_fits_or_the_viz_agent_was_down() -> None:
    rows = {"rows": [[1, 2]], "columns": ["a", "b"], "chart": {"kind": "table"}}
    assert query_view({**rows, "produced_by": {"chart": "viz-agent"}})["chart_note"].startswith("No chart fits")
    tripped = query_view(
        {
            **rows,
            "produced_by": {"chart": "fallback:table"},
            "fallbacks": ["viz: down at pre-flight (breaker viz open until 07:40:00)"],
        }
    )
    assert "circuit breaker is open" in tripped["chart_note"] and "07:40:00" in tripped["chart_note"]
    down = query_view(
        {**rows, "produced_by": {"chart": "fallback:table"}, "fallbacks": ["viz: connection refused -> table"]}
    )
    assert down["chart_note"].startswith("No chart: the viz agent was unavailable (connection refused")


def test_the_failure_does_not_repeat_the_compensations_the_page_lists() -> None:
    report = {
        "failed_step": "shipping",
        "cause": "carrier down",
        "compensations": [{"step": "payment", "activity": "refund", "outcome": "compensated"}],
    }
    failure = [{"type": "SagaCompensated", "message": "order failed at shipping", "details": [report]}]
    shown = failure_view(failure, compensations_shown=True)
    assert shown[0]["details"] == [{"failed_step": "shipping", "cause": "carrier down"}]
    assert failure_view(failure, compensations_shown=False) == failure
    assert "refund" not in str(render_value(shown)) and "refund" in str(render_value(failure))


def test_a_long_chart_title_is_wrapped_not_cut() -> None:
    title = "sum of precipitation from seattle_weather; by month of date; where year of date = 2014 and weather = rain"
    lines = title_lines(title)
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines)
    assert " ".join(lines) == title
