"""What the journal (`exchange_calls`) keeps of each request: one policy for every adapter.

Every adapter hands its requests to `WriteBatch.exchange_calls`, which applies this. Kept in
full: every request that changes something (anything but a GET), every error, and every
read about one order (a lookup by client or exchange order id: the evidence an order's
outcome rests on). A successful read of anything else (account, positions, open orders,
income, fills, markets: ~55 % of the file's bytes at the seeds' load, the same 3-4 KB twice a
minute) keeps its row (what was asked, when, how long it took: the health breaker counts it)
with a digest of the answer instead of the answer: a changed answer shows as a changed
digest. The first such read of each endpoint per mode and UTC day is still kept in full, a
daily sample of what the exchange sends.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Binance, Bybit and OKX names of the parameters that pick one order
ORDER_ID_PARAMS = frozenset(
    {
        "newClientOrderId", "origClientOrderId", "clientAlgoId", "orderId", "algoId",  # Binance
        "orderLinkId",  # Bybit
        "clOrdId", "ordId", "algoClOrdId",  # OKX (algoId as Binance)
    }
)  # fmt: skip
READS = frozenset({"GET"})


def kept_in_full(call: dict[str, Any]) -> bool:
    """An order-changing request, an error, or a read about one order."""
    if str(call.get("method", "")).upper() not in READS or call.get("error"):
        return True
    return bool(ORDER_ID_PARAMS & set(call.get("params") or {}))


def digest(response: Any) -> dict[str, Any]:
    """A compact stand-in for a read's answer: its SHA-256 (first 16 hex) and size."""
    text = json.dumps(response, sort_keys=True, default=str)
    return {"digest": hashlib.sha256(text.encode()).hexdigest()[:16], "bytes": len(text)}


def sample_key(mode: str, path: str) -> str:
    """The state key remembering the day a read of `path` was last kept in full."""
    return f"journal_sample:{mode}:{path}"
