"""sagaworks: durable sagas and LLM/data pipelines on Temporal.

The repository's ``workflows/``, ``activities/``, ``client/``, ``contracts/`` and
``mcp_servers/`` folders are installed as subpackages of this one import name
(``sagaworks.workflows``...), so a project of its own with a ``workflows.py`` or an
``activities.py`` never collides with them.

Importing ``sagaworks`` stays light (no Temporal client, no family): the CLI starts on it.
"""

# Families and the registry: declare a family once, register it under the entry-point
# group "sagaworks.families", and the worker, CLI, API and console serve it.
from sagaworks._registry import DemoRun as DemoRun
from sagaworks._registry import DemoUpdate as DemoUpdate
from sagaworks._registry import Family as Family
from sagaworks._registry import Registry as Registry
from sagaworks._registry import Restartable as Restartable
from sagaworks._registry import WorkerResources as WorkerResources
from sagaworks._registry import lazy as lazy
from sagaworks._registry import registry as registry
