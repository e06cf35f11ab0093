"""SIGINT and SIGTERM while orders are in flight: finish what protects money, then stop.

Inside `deferred_interrupts()` the first SIGINT/SIGTERM is remembered instead of raising
KeyboardInterrupt in the middle of a request; the step checks `interrupted()` between signals,
finishes the one in hand (a filled entry gets its stop), and then stops: the command exits
130. A second signal while it finishes raises at once, as an impatient operator expects.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


@contextmanager
def deferred_interrupts() -> Iterator[Callable[[], str | None]]:
    """Yields `interrupted()`: the name of the signal received, or None."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None  # handlers can only be installed in the main thread
        return

    def remember(signum: int, frame: object) -> None:
        if received:
            raise KeyboardInterrupt(NAMES.get(signum, str(signum)))
        received.append(NAMES.get(signum, str(signum)))

    previous = {sig: signal.signal(sig, remember) for sig in NAMES}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
