"""One module per pipeline step. A step takes a RunContext and returns a Result."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from qtrader.clock import utcnow
from qtrader.config import Settings
from qtrader.store import Store


@dataclass
class RunContext:
    settings: Settings
    store: Store
    run_id: int
    yes_live: bool = False  # --yes-live was given (QTRADER_LIVE_CONFIRM is read where it is needed)
    # Unique to this run beyond this file: run ids restart at 1 in a new database, and Bybit
    # refuses for ever a client id used once (110072), so ids of orders not tied to a signal
    # (the watchdog's, close-all's) are made from run_key, never from run_id alone.
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def run_key(self) -> str:
        return f"{self.run_id}:{self.nonce}"

    @property
    def mode(self) -> str:
        return self.settings.mode

    def now(self) -> datetime:
        return utcnow()
