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


# OKX v5 (the per-item sCode of an order endpoint, else the envelope's code), from OKX's
# error-code page and ccxt's okx exception table; several of these ccxt leaves as a plain
# ExchangeError (51169/51170, 51065, 51088). Codes that mean "not acted on" or "outcome
# unknown" (rate limits, 50102, 51149, 50004) are not refusals: exchange/okx_errors.py.
OKX: dict[int, Refusal] = {
    51008: R.INSUFFICIENT_MARGIN,  # insufficient margin / balance
    51127: R.INSUFFICIENT_MARGIN,  # available balance is 0
    51131: R.INSUFFICIENT_MARGIN,  # insufficient balance
    51121: R.BAD_QUANTITY,  # not a multiple of the lot size
    51020: R.BAD_QUANTITY,  # under the minimum size (minSz)
    51202: R.BAD_QUANTITY,  # over a market order's maximum
    51001: R.UNKNOWN_SYMBOL,  # instrument ID does not exist
    51277: R.WOULD_TRIGGER_NOW,  # TP trigger price vs last price
    51278: R.WOULD_TRIGGER_NOW,  # SL trigger price vs last price
    51279: R.WOULD_TRIGGER_NOW,
    51280: R.WOULD_TRIGGER_NOW,
    51169: R.NOTHING_TO_REDUCE,  # no position in this direction to reduce or close
    51170: R.NOTHING_TO_REDUCE,  # reduce-only in the position's own direction
    51023: R.NOTHING_TO_REDUCE,  # position does not exist (close-position)
    51016: R.DUPLICATE_CLIENT_ID,  # clOrdId in use by a pending order
    51065: R.DUPLICATE_CLIENT_ID,  # algoClOrdId already exists
    51088: R.TOO_MANY_PROTECTIONS,  # one whole-position TP/SL per position
    51603: R.NOT_FOUND,  # order does not exist
    51400: R.NOT_FOUND,  # cancel: already filled, cancelled or does not exist
    51401: R.NOT_FOUND,
    51402: R.NOT_FOUND,
    50100: R.AUTH,  # API key frozen
    50101: R.AUTH,  # key does not match the environment (demo vs live)
    50103: R.AUTH,
    50104: R.AUTH,
    50105: R.AUTH,  # passphrase incorrect
    50110: R.AUTH,  # IP not whitelisted
    50111: R.AUTH,
    50113: R.AUTH,  # invalid signature
    50114: R.AUTH,
    50119: R.AUTH,  # key does not exist
    50120: R.AUTH,  # key lacks the permission
}
OKX_FIXES: dict[int, str] = {
    50100: "the OKX API key is frozen: unfreeze it or make a new one",
    50101: "the key is for the other environment: OKX demo keys need --testnet, live keys --live",
    50103: "set OKX_API_KEY",
    50104: "set OKX_API_PASSPHRASE (chosen when the key was made)",
    50105: "OKX_API_PASSPHRASE is wrong: it is the passphrase chosen when the key was made",
    50110: "add this machine's IP to the OKX key's whitelist",
    50111: "check OKX_API_KEY: OKX does not know it",
    50113: "check OKX_API_SECRET: the signature did not verify",
    50114: "check OKX_API_KEY, OKX_API_SECRET and OKX_API_PASSPHRASE",
    50119: "check OKX_API_KEY: no such key (demo keys are made in Demo Trading)",
    50120: "give the OKX key the Trade permission",
    51008: "add USDT to the trading account, or lower the size or the leverage",
    51088: "OKX keeps one whole-position TP/SL per position: run qtrader reconcile",
    51010: "switch the OKX account to Spot and futures mode (Settings → Account mode)",
    51020: "raise the size to at least the market's minimum (minSz contracts)",
    51121: "the lot size changed: run qtrader execute --refresh-markets",
}
