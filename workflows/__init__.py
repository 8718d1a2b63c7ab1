"""Workflow definitions: deterministic orchestration only, never I/O.

The built-in families are declared in :mod:`sagaworks.workflows.catalog` and registered
through the ``sagaworks.families`` entry points; the worker serves every registered family.
"""
