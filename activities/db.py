"""The application database, as the built-in families import it.

The engine owns it (:mod:`sagaworks._db`, public as ``sagaworks.Database``); this module
keeps the import path, and the timestamp default's old name, that the families use.
"""

from sagaworks._db import Base, Database, database_url
from sagaworks._db import utcnow as _utcnow

__all__ = ["Base", "Database", "_utcnow", "database_url"]
