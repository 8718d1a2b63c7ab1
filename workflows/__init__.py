"""Workflow definitions: deterministic orchestration only, never I/O.

The families (and so the workflows the worker serves) are declared in
:mod:`workflows.catalog`.
"""
