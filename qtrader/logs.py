"""Logging: loguru to stderr; every line carries the run id and mode, secrets masked."""

from __future__ import annotations

import sys
from datetime import UTC
from typing import Any

from loguru import logger

from qtrader.secrets import mask

LEVELS = ("debug", "info", "warning", "error")
_FORMAT = (
    "{time:YYYY-MM-DDTHH:mm:ss.SSS}Z {level: <7} run={extra[run_id]} {extra[mode]} | {message}"
)


def setup_logging(level: str) -> None:
    logger.remove()
    logger.configure(extra={"run_id": "-", "mode": "-"}, patcher=_to_utc)
    logger.add(_masked_stderr, level=level.upper(), format=_FORMAT, colorize=False)


def bind_run(run_id: int | None, mode: str | None) -> None:
    logger.configure(extra={"run_id": run_id if run_id is not None else "-", "mode": mode or "-"})


def _masked_stderr(message: Any) -> None:
    sys.stderr.write(mask(str(message)))


def _to_utc(record: Any) -> None:
    record["time"] = record["time"].astimezone(UTC)
