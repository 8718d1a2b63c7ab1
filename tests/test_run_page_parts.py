"""What the console's run page builds for any family, without a browser: update forms from
the input models, restart points, a ticket as text, a result's repeated report shown once."""

from __future__ import annotations

from sagaworks import registry
from sagaworks.client.api.console import restart_points
from sagaworks.client.api.render import interaction_forms, lookup_text, render_value, ticket_view, without_repeats


def test_each_update_and_signal_with_an_input_model_gets_a_form() -> None:
    ticket = registry().family("support-ticket")
    forms = {f["name"]: f for f in interaction_forms(ticket.workflow, list(ticket.accepts))}
    assert set(forms) == {"assign", "resolve", "reopen", "comment"}  # pause and resume are buttons
    assert forms["comment"]["kind"] == "signal" and forms["assign"]["kind"] == "update"
    [agent] = forms["assign"]["fields"]
    assert (agent["name"], agent["kind"], agent["required"], agent["maxLength"]) == ("agent", "string", True, 100)
    assert forms["assign"]["doc"].startswith("Give the ticket to an agent")
    routing = registry().family("routing")
    approve = {f["name"]: f for f in interaction_forms(routing.workflow, list(routing.accepts))}["approve"]
    assert [(f["name"], f["required"]) for f in approve["fields"]] == [("approver", True), ("reason", False)]


def test_restart_points_are_the_completed_steps_and_the_one_a_run_stopped_at() -> None:
    order = registry().family("order")
    plan = [
        "create_customer_account",
        "charge_payment",
        "send_notification",
        "reserve_inventory",
        "create_shipping_label",
    ]
    failed = {
        "status": "FAILED",
        "progress": {
            "plan": plan,
            "completed_steps": plan[:4],
            "compensations": [{"step": s, "activity": "undo", "outcome": "compensated"} for s in reversed(plan[:4])],
        },
    }
    points = restart_points(order, failed)
    assert [p["step"] for p in points] == plan
    assert points[0]["undone"] == [] and points[4]["undone"] == plan[:4] and points[4]["completed"] is False
    assert restart_points(order, {**failed, "status": "RUNNING"}) == []
    assert restart_points(order, {"status": "COMPLETED", "progress": "no worker answered"}) == []
    # plan-analysis restarts from its steps too: its stages done, and the one it stopped at.
    plan_analysis = registry().family("plan-analysis")
    stages = ["load", "extract", "semantic", "causal", "mechanisms", "financial", "dnp", "scoring", "report"]
    stopped = restart_points(
        plan_analysis, {"status": "FAILED", "progress": {"plan": stages, "completed_steps": stages[:2]}}
    )
    assert [(p["step"], p["completed"]) for p in stopped] == [("load", True), ("extract", True), ("semantic", False)]


def test_a_ticket_is_shown_as_text() -> None:
    view = ticket_view(
        {
            "ticket_id": "T-1",
            "customer_email": "a@example.com",
            "subject": "Refund",
            "ticket_type": "customer_service",
            "priority": "HIGH",
            "state": "open",
            "customer_tier": "premium",
            "escalations": [
                {
                    "reason": "premium customer, HIGH priority",
                    "at": "2026-12-02T10:00:00Z",
                    "from_priority": "MEDIUM",
                    "to_priority": "HIGH",
                    "notified": "notified support-leads",
                }
            ],
            "lookups": [
                {
                    "what": "customer tier",
                    "server": "database",
                    "tool": "read_query",
                    "result": "[{'tier': 'premium'}]",
                },
                {"what": "recent log files", "server": "files", "tool": "search_files", "error": "no server"},
            ],
            "routing_path": ["classified", "lookups"],
        }
    )
    assert view["escalations"] == [
        "2026-12-02T10:00:00Z: MEDIUM -> HIGH, premium customer, HIGH priority (notified support-leads)"
    ]
    assert view["lookups"][0]["result"] == [{"tier": "premium"}]
    assert "{'" not in str(render_value(view["lookups"][0]["result"]))
    assert view["lookups"][1]["error"] == "no server" and view["routing_path"] == "classified -> lookups"
    assert lookup_text("plain words") == "plain words" and lookup_text('{"a": 1}') == {"a": 1}
    assert lookup_text("__import__('os').system('true')") == "__import__('os').system('true')"  # never evaluated


def test_a_plan_result_renders_its_report_once() -> None:
    report = "# Plan report\n\n" + "A finding. " * 40
    result = {"plan_id": "p", "report": report, "stages": [{"stage": "report", "document": report, "summary": "short"}]}
    shown = str(render_value(without_repeats(result)))
    assert shown.count("<h1>Plan report</h1>") == 1 and "(the report above)" in shown
    assert without_repeats({"sql": "SELECT 1"}) == {"sql": "SELECT 1"}
