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


# What each exit code means to whoever runs qtrader (cron, a person, a supervisor). The docs'
# reference page and `qtrader --help` are made from this; 130 is the shell's "interrupted".
EXIT_CODES: dict[int, str] = {
    0: "done",
    1: "runtime failure: a source or the exchange unreachable, an order failed or has an unknown "
    "outcome, a stop-loss could not be placed (the position was closed), a 418 ban, --strict "
    "with invalid records, an internal error",
    2: "bad usage or configuration: unknown option, missing file, unknown setting, bad value, a "
    "database file this user cannot write; nothing was attempted",
    3: "halted: the kill switch or a circuit breaker holds; execute sends no new entry (it still "
    "protects entries that already filled and runs CLOSE signals). A run that finds a halt and "
    "fails exits 1, not 3, and its error names both",
    4: "database busy: another process held the DuckDB lock longer than --lock-timeout; stderr "
    "names it (PID, command line) and how to release it. close-all does not exit 4 for this: "
    "it acts first and records later",
    130: "interrupted (Ctrl-C, SIGINT or SIGTERM): execute first finishes the signal in hand (a "
    "filled entry gets its stop), puts the entries it had not sent back to pending, then stops",
}


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
