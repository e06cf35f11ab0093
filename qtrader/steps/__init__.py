"""One module per pipeline step. A step takes a RunContext and returns a Result."""

from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def mode(self) -> str:
        return self.settings.mode

    def now(self) -> datetime:
        return utcnow()
