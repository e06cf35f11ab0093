"""Binance's request-weight budget, spent instead of sleeping a fixed time per request.

Binance USDⓈ-M allows 2,400 request weight a minute per IP (the window is the clock minute)
and answers every request with `X-MBX-USED-WEIGHT-1M`, the weight that IP has used in the
current minute (other processes on the same machine included). ccxt's own limiter sleeps
`cost × rateLimit` before each request whatever is left; this one sends at once while the
minute's budget has room for the request, and otherwise sleeps until the next minute begins.
It reserves each request's cost before it is sent and takes the exchange's figure whenever it
is higher, so it never plans past the limit even when another process shares the IP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

LIMIT_1M = 2400
HEADROOM = 0.9  # leave a tenth for what others on the IP send between our looks at the header


class WeightBudget:
    def __init__(
        self,
        limit: int = LIMIT_1M,
        headroom: float = HEADROOM,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit * headroom
        self.clock = clock
        self.sleep = sleep
        self.minute = self._minute()
        self.used = 0.0
        self.slept_s = 0.0

    def _minute(self) -> int:
        return math.floor(self.clock() / 60)

    def _roll(self) -> None:
        minute = self._minute()
        if minute != self.minute:
            self.minute, self.used = minute, 0.0

    def wait_s(self, cost: float) -> float:
        """Seconds to wait before a request of this weight (0 while the minute has room)."""
        self._roll()
        if self.used + cost <= self.limit:
            return 0.0
        return (self.minute + 1) * 60 - self.clock() + 0.05

    def spend(self, cost: float) -> float:
        """Wait if the minute's budget has no room, then reserve `cost`; returns seconds slept."""
        wait = self.wait_s(cost)
        if wait > 0:
            self.sleep(wait)
            self.slept_s += wait
            self._roll()
        self.used += cost
        return wait

    def observe(self, used_weight_1m: str | int | None) -> None:
        """The exchange's X-MBX-USED-WEIGHT-1M for the current minute."""
        try:
            used = float(used_weight_1m)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        self._roll()
        self.used = max(self.used, used)
