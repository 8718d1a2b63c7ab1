"""Plain LangGraph graphs (no sagaworks import outside ``families``)."""
