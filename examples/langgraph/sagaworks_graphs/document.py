"""A document pipeline: validate -> parse -> chunk -> extract -> store, or to error when
the document is not valid. Plain LangGraph: ``build().compile().invoke(...)`` runs it."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

STORE_DIR_ENV = "DOCUMENT_GRAPH_STORE"
CHUNK_WORDS = 50


class DocumentState(TypedDict, total=False):
    document_id: str
    text: str
    status: str
    error_message: str
    parsed: dict[str, Any]
    chunks: list[str]
    concepts: list[str]
    stored_at: str


def store_dir() -> Path:
    return Path(os.environ.get(STORE_DIR_ENV, "document-graph-store"))


def validate(state: DocumentState) -> dict[str, Any]:
    if not state.get("document_id", "").strip():
        return {"status": "invalid", "error_message": "document_id: required"}
    if not state.get("text", "").strip():
        return {"status": "invalid", "error_message": "text: the document is empty"}
    return {"status": "valid"}


def route_after_validate(state: DocumentState) -> str:
    return "continue" if state["status"] == "valid" else "error"


def parse(state: DocumentState) -> dict[str, Any]:
    lines = [line.strip() for line in state["text"].splitlines() if line.strip()]
    words = re.findall(r"[A-Za-z][A-Za-z'-]+", state["text"])
    return {"status": "parsed", "parsed": {"lines": len(lines), "words": len(words), "title": lines[0][:80]}}


def chunk(state: DocumentState) -> dict[str, Any]:
    words = state["text"].split()
    chunks = [" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    return {"status": "chunked", "chunks": chunks}


def extract(state: DocumentState) -> dict[str, Any]:
    counts = Counter(w.lower() for c in state["chunks"] for w in re.findall(r"[A-Za-z]{5,}", c))
    return {"status": "extracted", "concepts": [w for w, _ in counts.most_common(5)]}


def store(state: DocumentState) -> dict[str, Any]:
    path = store_dir() / f"{state['document_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {k: state.get(k) for k in ("document_id", "parsed", "concepts")}
    path.write_text(json.dumps(record, sort_keys=True))
    return {"status": "stored", "stored_at": str(path)}


def unstore(state: DocumentState) -> None:
    """Undo of ``store``: remove what it wrote (nothing to do if it wrote nothing)."""
    (store_dir() / f"{state['document_id']}.json").unlink(missing_ok=True)


def error(state: DocumentState) -> dict[str, Any]:
    return {"status": "failed"}


def build() -> StateGraph:
    graph = StateGraph(DocumentState)
    for name, node in (
        ("validate", validate),
        ("parse", parse),
        ("chunk", chunk),
        ("extract", extract),
        ("store", store),
        ("error", error),
    ):
        graph.add_node(name, node)
    graph.add_edge(START, "validate")
    graph.add_conditional_edges("validate", route_after_validate, {"continue": "parse", "error": "error"})
    graph.add_edge("parse", "chunk")
    graph.add_edge("chunk", "extract")
    graph.add_edge("extract", "store")
    graph.add_edge("store", END)
    graph.add_edge("error", END)
    return graph


graph = build().compile()
