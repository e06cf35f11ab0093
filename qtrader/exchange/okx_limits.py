"""OKX's rate limits: a number of requests per window, per endpoint (not a weight budget).

OKX v5 limits each endpoint on its own (e.g. placing orders 60 per 2 s per instrument,
algo orders 20 per 2 s, fills-history 10 per 2 s, bills 5 per second) and answers 50011
(HTTP 429) past them. ccxt's own limiter sleeps `cost × rateLimit` before *every* request;
this one sends at once while the endpoint's window has room and otherwise sleeps only until
its oldest request leaves the window, so a burst of entries is not spaced out for nothing.
Figures from OKX's REST docs (the smaller one where a limit is per instrument and per user).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

# path (as ccxt's okx names it) → (requests, window in seconds)
LIMITS: dict[str, tuple[int, float]] = {
    "public/instruments": (20, 2),
    "public/time": (10, 2),
    "public/mark-price": (10, 2),
    "account/config": (5, 2),
    "account/balance": (10, 2),
    "account/positions": (10, 2),
    "account/set-leverage": (20, 2),
    "account/bills": (5, 1),
    "account/bills-archive": (5, 2),
    "trade/order": (60, 2),
    "trade/orders-pending": (60, 2),
    "trade/orders-history": (40, 2),
    "trade/cancel-order": (60, 2),
    "trade/order-algo": (20, 2),
    "trade/orders-algo-pending": (20, 2),
    "trade/cancel-algos": (20, 2),
    "trade/close-position": (20, 2),
    "trade/fills-history": (10, 2),
}
DEFAULT = (5, 2)


class EndpointLimits:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.sent: dict[str, deque[float]] = {}
        self.slept_s = 0.0

    def wait_s(self, path: str) -> float:
        """Seconds to wait before one more request to `path` (0 while its window has room)."""
        count, window = LIMITS.get(path, DEFAULT)
        times = self.sent.setdefault(path, deque())
        now = self.clock()
        while times and now - times[0] >= window:
            times.popleft()
        if len(times) < count:
            return 0.0
        return window - (now - times[0]) + 0.01

    def spend(self, path: str) -> float:
        """Wait if the window is full, then count the request; returns seconds slept."""
        wait = self.wait_s(path)
        if wait > 0:
            self.sleep(wait)
            self.slept_s += wait
            self.wait_s(path)  # drop what left the window while sleeping
        self.sent.setdefault(path, deque()).append(self.clock())
        return wait
