"""The DuckDB store: connection, migrations, and the queries each step needs."""

from qtrader.store.db import Store, open_store

__all__ = ["Store", "open_store"]
