"""The application database, as the built-in families import it.

The engine owns it (:mod:`sagaworks._db`, public as ``sagaworks.Database``); this module
keeps the import path the families and tests have used.
"""

from sagaworks._db import Base, Database, database_url, utcnow

__all__ = ["Base", "Database", "database_url", "utcnow"]
