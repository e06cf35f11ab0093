"""Errors that carry their exit code, and the one place that maps any error to one.

The command contract: stdout is data (a table, or exactly one JSON document with --json),
stderr is logs and the one-line error. Exit codes:

    0 done
    1 runtime failure (a source or the exchange unreachable, an order failed, --strict input)
    2 bad usage or configuration
    3 halted (kill switch or circuit breaker)
    4 database busy (another run held the DuckDB lock longer than --lock-timeout)
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    HALTED = 3
    BUSY = 4


class QtraderError(Exception):
    """An expected failure: its message says what is wrong and what to do about it."""

    exit_code: ExitCode = ExitCode.FAILURE
    outcome: str = "failed"


class UsageError(QtraderError):
    """The command line or a file named on it is wrong; nothing was attempted."""

    exit_code = ExitCode.USAGE
    outcome = "usage"


class ConfigError(UsageError):
    """A setting is unknown or has a bad value (names the key and where it came from)."""


class SourceUnavailable(QtraderError):
    """A signal source could not be read (connection refused, HTTP error); usually temporary."""


class StrictInputError(QtraderError):
    """--strict was given and at least one record was invalid (all were still stored)."""


class Halted(QtraderError):
    """Trading is halted by the kill switch or a circuit breaker; `qtrader resume` lifts it."""

    exit_code = ExitCode.HALTED
    outcome = "halted"


class DatabaseBusy(QtraderError):
    """Another process held the DuckDB file's lock for longer than --lock-timeout."""

    exit_code = ExitCode.BUSY
    outcome = "busy"


def exit_code_for(error: BaseException) -> ExitCode:
    if isinstance(error, QtraderError):
        return error.exit_code
    return ExitCode.FAILURE
