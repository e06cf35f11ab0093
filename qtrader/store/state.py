"""The `state` table: small JSON values by key (cursors, caches; halts have their own table)."""

from __future__ import annotations

import json
from typing import Any

from qtrader.clock import utcnow
from qtrader.store.db import Store


def get_state(store: Store, key: str) -> Any | None:
    row = store.fetchone("SELECT value FROM state WHERE key = ?", [key])
    return json.loads(row[0]) if row else None


def set_state(store: Store, key: str, value: Any) -> None:
    store.execute(
        "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        [key, json.dumps(value, default=str), utcnow()],
    )


def cursor_key(source_id: str) -> str:
    return f"cursor:{source_id}"
