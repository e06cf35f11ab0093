"""One actor at a time: the runs that act on the exchange take `<db>.actor.lock` for their
whole length.

The DuckDB file is now opened only around reads and writes (db.Store.release), so its own
lock no longer keeps two runs apart: execute and reconcile would interleave, and reconcile's
watchdog could see an entry's stop before its position (and cancel it as an orphan). This
advisory lock (flock) keeps `execute`, `reconcile` and `close-all` one at a time, as the
DuckDB lock did, while readers (`status`, `sql`, `pnl-report`) get the file between writes.
The holder writes its PID and command line into the file, for the message of whoever waits.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from qtrader.errors import DatabaseBusy

ACTORS = frozenset({"execute", "reconcile", "close-all", "prune"})


def lock_path(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".actor.lock")


@contextmanager
def actor_lock(db_path: str | Path, timeout_s: float, command: str) -> Iterator[None]:
    """Hold the actor lock for the block, waiting up to `timeout_s` (then DatabaseBusy)."""
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        _acquire(handle, path, timeout_s)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()} qtrader {command} ({' '.join(sys.argv[1:])[:150]})\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle: IO[str], path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + max(timeout_s, 0.0)
    delay = 0.05
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise DatabaseBusy(
                    f"another qtrader run is acting on the exchange (PID {holder}; lock "
                    f"{path}); waited {timeout_s:g}s. Wait for it to finish or raise "
                    "--lock-timeout; if it hangs, stop that PID"
                ) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
