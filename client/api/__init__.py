"""The HTTP API and web console: one FastAPI app over :mod:`client.runs` and the catalog.

``saga api`` calls :func:`serve`; tests build the app with :func:`create_app`.
"""

from sagaworks.client.api.app import create_app
from sagaworks.client.api.server import serve
from sagaworks.client.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "serve"]
