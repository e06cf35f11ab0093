"""Client order ids on OKX: at most 32 letters and digits (`clOrdId`, `algoClOrdId`).

qtrader's ids (`qt-<24 hex>-<role tag>[attempt]`, domain/orders.py) carry hyphens, which OKX
refuses. The OKX form drops them (`qt<24 hex><tag>`, ≤ 32 characters for any attempt below
10^4); the mapping is deterministic both ways, so a rerun looks up the id an earlier run sent
and an order read back from OKX's book is known as qtrader's again.
"""

from __future__ import annotations

import re

OKX_ID_PATTERN = re.compile(r"^[A-Za-z0-9]{1,32}$")
_QTRADER_ID = re.compile(r"^qt-([0-9a-f]{24})-([a-z]+[0-9]*)$")
_OKX_QTRADER_ID = re.compile(r"^qt([0-9a-f]{24})([a-z]+[0-9]*)$")


class BadClientId(ValueError):
    """An id that cannot be sent to OKX as it is."""


def okx_client_id(cid: str) -> str:
    """qtrader's id as OKX accepts it; other ids must already be OKX-valid."""
    match = _QTRADER_ID.match(cid)
    if not match and _OKX_QTRADER_ID.match(cid):
        # already in the OKX form of a qtrader id: passed through, it would be the same
        # clOrdId as `qt-<hex>-<tag>` (two ids, one order) and read back as that id
        raise BadClientId(f"client id {cid!r} would collide with a qtrader id on OKX")
    okx = f"qt{match.group(1)}{match.group(2)}" if match else cid
    if not OKX_ID_PATTERN.match(okx):
        raise BadClientId(f"client id {cid!r} is not ≤ 32 letters and digits as OKX requires")
    return okx


def qtrader_client_id(okx_id: str) -> str:
    """An OKX clOrdId as qtrader knows it (ids qtrader did not make are kept as they are)."""
    match = _OKX_QTRADER_ID.match(okx_id or "")
    return f"qt-{match.group(1)}-{match.group(2)}" if match else (okx_id or "")
