"""Each exchange's rejection codes → qtrader's `Refusal` (domain/orders.py).

The steps and the lifecycle rules decide on the meaning alone; the number is kept on the order's
row (`orders.error_code`) for people. An adapter raises `ExchangeRejected(code, message,
refusal_of(CODES, code))`. No ccxt import here: the paper exchange speaks Binance's codes too.
"""

from __future__ import annotations

from qtrader.domain.orders import Refusal

R = Refusal

BINANCE: dict[int, Refusal] = {
    -2019: R.INSUFFICIENT_MARGIN,
    -4164: R.BELOW_MIN_NOTIONAL,
    -1111: R.BAD_QUANTITY,  # precision over the maximum (quantity or price)
    -4003: R.BAD_QUANTITY,
    -4005: R.BAD_QUANTITY,
    -4014: R.BAD_PRICE,
    -1121: R.UNKNOWN_SYMBOL,
    -4140: R.MARKET_CLOSED,
    -2021: R.WOULD_TRIGGER_NOW,
    -2022: R.NOTHING_TO_REDUCE,
    -4061: R.POSITION_MODE_CHANGED,
    -4015: R.DUPLICATE_CLIENT_ID,
    -4116: R.DUPLICATE_CLIENT_ID,
    -2013: R.NOT_FOUND,
    -2011: R.NOT_FOUND,
    -4046: R.NO_CHANGE,  # margin type unchanged
    -4059: R.NO_CHANGE,  # position side unchanged
    -4028: R.NO_CHANGE,  # leverage unchanged (as ccxt reports it)
    -2014: R.AUTH,
    -2015: R.AUTH,
    -1022: R.AUTH,
    -2008: R.AUTH,
}
BINANCE_FIXES: dict[int, str] = {
    -4120: "conditional orders go to the Algo Order API: upgrade ccxt (>= 4.5.27)",
    -2015: "check BINANCE_API_KEY/SECRET, the key's futures permission and its IP whitelist",
    -2014: "check BINANCE_API_KEY: it is malformed",
    -1022: "check BINANCE_API_SECRET: the signature did not verify",
}

# Bybit v5 (retCode), from Bybit's error-code page and ccxt's bybit exception table.
BYBIT: dict[int, Refusal] = {
    110004: R.INSUFFICIENT_MARGIN,  # wallet balance insufficient
    110006: R.INSUFFICIENT_MARGIN,  # cannot afford the estimated position margin
    110007: R.INSUFFICIENT_MARGIN,  # available balance not enough for the new order
    110012: R.INSUFFICIENT_MARGIN,
    110044: R.INSUFFICIENT_MARGIN,
    110045: R.INSUFFICIENT_MARGIN,
    110094: R.BELOW_MIN_NOTIONAL,  # order notional value below the lower limit
    110003: R.BAD_PRICE,  # price out of the permissible range
    10029: R.UNKNOWN_SYMBOL,  # symbol not in the key's whitelist / invalid
    110092: R.WOULD_TRIGGER_NOW,  # expect Rising, but trigger price <= current
    110093: R.WOULD_TRIGGER_NOW,  # expect Falling, but trigger price >= current
    110017: R.NOTHING_TO_REDUCE,  # reduce-only rule not satisfied (position is zero)
    110025: R.NO_CHANGE,  # position mode not modified
    110026: R.NO_CHANGE,  # cross/isolated margin mode not modified
    110043: R.NO_CHANGE,  # leverage not modified
    110072: R.DUPLICATE_CLIENT_ID,  # orderLinkId is duplicate
    110001: R.NOT_FOUND,  # order does not exist (or too late to cancel)
    110008: R.NOT_FOUND,  # order already finished or cancelled: nothing to cancel
    110009: R.TOO_MANY_PROTECTIONS,  # conditional orders over the symbol's limit
    10003: R.AUTH,  # invalid api key (demo keys on testnet, mainnet keys on demo)
    10004: R.AUTH,  # invalid signature
    10005: R.AUTH,  # permission denied for the key
    10010: R.AUTH,  # request IP not in the key's whitelist
    33004: R.AUTH,  # key expired
}
BYBIT_FIXES: dict[int, str] = {
    10003: "check BYBIT_API_KEY: demo-trading keys are made on bybit.com in Demo Trading mode",
    10004: "check BYBIT_API_SECRET: the signature did not verify",
    10005: "the Bybit key needs Contract - Orders and Positions permission (read-write)",
    10010: "add this machine's IP to the Bybit key's whitelist",
}


def refusal_of(table: dict[int, Refusal], code: int | None) -> Refusal:
    return table.get(code, Refusal.OTHER) if code is not None else Refusal.OTHER
