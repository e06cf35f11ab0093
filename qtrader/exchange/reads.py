"""What every ccxt adapter does around a request: translate ccxt's exceptions into the port's,
retry reads (and idempotent settings) with back-off on transient errors, resync the clock
before the next attempt after a clock-skew refusal, and take "nothing to change" as done."""

from __future__ import annotations

from typing import Any, ClassVar

import ccxt
import tenacity

from qtrader.domain.orders import Refusal
from qtrader.exchange.port import ExchangeRejected, ExchangeUnavailable


class RetryingReads:
    """Mixed into an adapter that has `client` (its ccxt client), `read_retries` and
    `retry_wait_s`; it names its exchange's clock-skew error and translates ccxt's errors."""

    client: Any
    read_retries: int
    retry_wait_s: float
    clock_skew: ClassVar[type[Exception]]

    def _translate(self, exc: ccxt.BaseError) -> Exception:
        raise NotImplementedError

    def _setting(self, call: Any) -> None:
        try:
            self._read(call)
        except ExchangeRejected as exc:
            if exc.refusal is not Refusal.NO_CHANGE:
                raise

    def _read(self, call: Any) -> Any:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.read_retries),
            wait=tenacity.wait_exponential(multiplier=self.retry_wait_s, max=10),
            retry=tenacity.retry_if_exception_type(ExchangeUnavailable),
            before_sleep=self._resync_if_skewed,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._call(call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _resync_if_skewed(self, state: tenacity.RetryCallState) -> None:
        if state.outcome is not None and isinstance(state.outcome.exception(), self.clock_skew):
            self._call(self.client.load_time_difference)

    def _call(self, call: Any) -> Any:
        try:
            return call()
        except ccxt.BaseError as exc:
            raise self._translate(exc) from None
