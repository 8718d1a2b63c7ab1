"""Activities: every side effect (database, files, LLM, HTTP), never orchestration.

Each built-in family's activities are built by :mod:`sagaworks.activities.catalog` from
the worker's resources; the worker serves those of every registered family.
"""
