"""sagaworks: durable sagas and LLM/data pipelines on Temporal.

The repository's ``workflows/``, ``activities/``, ``client/``, ``contracts/`` and
``mcp_servers/`` folders are installed as subpackages of this one import name
(``sagaworks.workflows``...), so a project of its own with a ``workflows.py`` or an
``activities.py`` never collides with them.
"""
