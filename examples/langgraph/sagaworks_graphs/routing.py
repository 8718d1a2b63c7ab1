"""Requests routed by user tier; an admin request waits for a human approval
(``interrupt``). Plain LangGraph: with a checkpointer, ``invoke`` stops at the interrupt
and ``invoke(Command(resume={"approved": True, ...}), config)`` goes on."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class RoutingState(TypedDict, total=False):
    user_input: str
    user_type: str
    processing_path: str
    result: str
    requires_approval: bool
    approver: str


def classify_user(state: RoutingState) -> dict[str, Any]:
    text = state["user_input"].lower()
    user_type = (
        "admin" if "admin" in text else "premium" if ("premium" in text or "pro" in text.split()) else "standard"
    )
    return {"user_type": user_type, "requires_approval": user_type == "admin"}


def admin_processing(state: RoutingState) -> dict[str, Any]:
    return {"result": f"Admin processing: {state['user_input']} - full access", "processing_path": "admin"}


def premium_processing(state: RoutingState) -> dict[str, Any]:
    return {"result": f"Premium processing: {state['user_input']} - enhanced features", "processing_path": "premium"}


def standard_processing(state: RoutingState) -> dict[str, Any]:
    return {"result": f"Standard processing: {state['user_input']} - basic features", "processing_path": "standard"}


def approval_check(state: RoutingState) -> dict[str, Any]:
    decision = interrupt({"question": "grant full access?", "result": state["result"]})
    verdict = "APPROVED" if decision["approved"] else "DENIED"
    return {"result": f"{verdict}: {state['result']}", "approver": decision.get("approver") or ""}


def route_by_user_type(state: RoutingState) -> Literal["admin", "premium", "standard"]:
    return state["user_type"]  # type: ignore[return-value]  # user_type is one of the three (RoutingInput validates it)


def needs_approval(state: RoutingState) -> Literal["approval", "direct"]:
    return "approval" if state["requires_approval"] else "direct"


def build() -> StateGraph:
    graph = StateGraph(RoutingState)
    graph.add_node("classify_user", classify_user)
    graph.add_node("admin_processing", admin_processing)
    graph.add_node("premium_processing", premium_processing)
    graph.add_node("standard_processing", standard_processing)
    graph.add_node("approval_check", approval_check)
    graph.add_edge(START, "classify_user")
    graph.add_conditional_edges(
        "classify_user",
        route_by_user_type,
        {"admin": "admin_processing", "premium": "premium_processing", "standard": "standard_processing"},
    )
    graph.add_conditional_edges("admin_processing", needs_approval, {"approval": "approval_check", "direct": END})
    graph.add_edge("premium_processing", END)
    graph.add_edge("standard_processing", END)
    graph.add_edge("approval_check", END)
    return graph


graph = build().compile()
